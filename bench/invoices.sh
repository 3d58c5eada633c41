#!/usr/bin/env bash
# Benchmark (not a test): invoice links and PDFs on the release build, SQLite, with wrk and
# `Accept-Encoding: br, gzip`. Requests/s and p50/p99 of the landing page and of an invoice
# opened by its link (/i/{token}: the limiter, the link's lookup by hash, kept for a second,
# the open counted in memory, the cached page with the token spliced in), at the same
# connection count; the stored PDF served by its link; and the time to
# render one invoice PDF (invoice-pdf's example, p50/p99 of many renders).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh"
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }

export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
bash scripts/build-site.sh >/dev/null
$PORTAL_CARGO build -q --release -p server --bin server
$PORTAL_CARGO build -q --release -p invoice-pdf --example render
bin="$CARGO_TARGET_DIR/release"

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
data="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$data"
}
trap cleanup EXIT
source "$here/lib.sh"

echo "render one invoice PDF (invoice-pdf, release):"
"$bin/examples/render"

base=http://127.0.0.1:3994
# No Stripe keys: orders are paid by bank transfer, and their first invoice is issued at once.
# The link limit is lifted: wrk opens the link from one address.
LEPTOS_SITE_ADDR=127.0.0.1:3994 PORTAL_DATA_DIR="$data/run" RUST_LOG=warn PORTAL_JOB_POLL_SECONDS=1 \
  PORTAL_INVOICE_LINK_OPENS_PER_MINUTE=100000000 "$bin/server" & pids+=($!)
until curl -fs -o /dev/null "$base/readyz"; do sleep 0.05; done

cookie=$(signed_in_cookie "$base")
post() { # path [curl args…]
  local path="$1"; shift
  curl -fsS -H "Cookie: $cookie" -H "Origin: $base" "$@" "$base$path"
}
# Verify the address by the link in the outbox's email (the portal writes .eml files there).
verify=$(verification_path "$data/run/outbox")
post "$verify" -o /dev/null -X POST
post /billing -o /dev/null -d name=Bench -d address_line1='Mannerheimintie 1' -d postal_code=00100 \
  -d city=Helsinki -d country=FI -d billing_email=bench@example.com
post /order -o /dev/null -d plan=business -d interval=monthly -d region=eu-central -d name=bench-home -d currency=eur
invoice=$(post /billing/invoices | grep -o 'data-invoice="[^"]*"' | head -1 | cut -d'"' -f2)
[ -n "$invoice" ] || { echo "bench: the order has no invoice" >&2; exit 1; }
token=$(post "/billing/invoices/$invoice/links" -X POST | grep -o '/i/[A-Za-z0-9_-]\{43\}' | head -1 | cut -c4-)
# The render job stores the PDF within a few seconds.
for _ in $(seq 100); do
  "$PORTAL_TOOLS/venv/bin/python" -c 'import sqlite3, sys
sys.exit(0 if sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM invoice_pdfs").fetchone()[0] else 1)' \
    "$data/run/portal.sqlite3" 2>/dev/null && break
  sleep 0.1
done

echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, Accept-Encoding: br, gzip"
landing=$(measure "landing page" "$base/")
link=$(measure "/i/{token}" "$base/i/$token")
awk -v i="$link" -v l="$landing" 'BEGIN { printf "invoice by its link = %.0f %% of the landing page\n", 100 * i / l }'
measure "/i/{token}/pdf" "$base/i/$token/pdf" >/dev/null
