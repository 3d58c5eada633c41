#!/usr/bin/env bash
# Benchmark (not a test): homeservers on the local driver, release build, SQLite, real Synapse.
# - From payment to the first admin signed in, over RUNS homeservers (default 5) one after the
#   other: the clock starts when `server billing mark-paid` returns (the manual invoice marked
#   paid) and stops when Synapse accepted the first admin's password, which the customer's
#   owner revealed on the homeserver page (provisioning, the first start, both registrations,
#   the reveal and the sign-in). Prints each time and the p50.
# - The resident memory of each idle Synapse after a minute, and how many idle homeservers fit
#   in this machine's memory at that size (keeping 2 GiB for the system and the portal).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh"
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"

export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
bash scripts/build-site.sh >/dev/null
$PORTAL_CARGO build -q --release -p server --bin server
bin="$CARGO_TARGET_DIR/release/server"
RUNS="${BENCH_RUNS:-5}"
data="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  rm -rf "$data"
}
trap cleanup EXIT
source "$here/lib.sh"

base=http://127.0.0.1:3995
export PORTAL_DATA_DIR="$data/run" PORTAL_SELLER_NAME='Example Hosting Oy' \
  PORTAL_SELLER_ADDRESS='Mannerheimintie 1; 00100 Helsinki; Finland' PORTAL_SELLER_IBAN=FI2112345600000785
LEPTOS_SITE_ADDR=127.0.0.1:3995 RUST_LOG=warn PORTAL_JOB_POLL_SECONDS=1 "$bin" & pids+=($!)
until curl -fs -o /dev/null "$base/readyz"; do sleep 0.05; done

cookie=$(signed_in_cookie "$base")
post() { # path [curl args…]
  local path="$1"; shift
  curl -fsS -H "Cookie: $cookie" -H "Origin: $base" "$@" "$base$path"
}
post "$(verification_path "$data/run/outbox")" -o /dev/null -X POST
post /billing -o /dev/null -d name=Bench -d address_line1='Mannerheimintie 1' -d postal_code=00100 \
  -d city=Helsinki -d country=FI -d billing_email=bench@example.com

now() { date +%s.%N; }
times=()
for run in $(seq "$RUNS"); do
  post /order -o /dev/null -d plan=starter -d interval=monthly -d region=eu-north -d "name=bench-$run" -d currency=eur
  sub=$(post /dashboard | grep -o 'href="/homeservers/[^"]*"' | cut -d/ -f3 | tr -d '"' | sort | tail -1)
  invoice=$(post /billing/invoices | grep -o 'data-invoice="[^"]*"' | head -1 | cut -d'"' -f2)
  "$bin" billing mark-paid --invoice "$invoice" >/dev/null
  start=$(now)
  until post "/homeservers/$sub" | grep -q 'reveal-password'; do sleep 0.1; done
  page=$(post "/homeservers/$sub/reveal-password" -X POST)
  password=$(grep -o 'class="admin-password"[^>]*value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
  url=$(post "/homeservers/$sub" | grep -o 'http://127.0.0.1:[0-9]*' | head -1)
  curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "{\"type\":\"m.login.password\",\
\"identifier\":{\"type\":\"m.id.user\",\"user\":\"admin\"},\"password\":\"$password\"}" \
    "$url/_matrix/client/v3/login"
  took=$(echo "$(now) - $start" | bc)
  times+=("$took")
  printf 'homeserver %s: payment to the admin signed in %.1f s\n' "$run" "$took"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "p50 over %d: %.1f s\n", NR, t[int((NR + 1) / 2)] }'

sleep 60
rss_kb=$(for pid in $(pgrep -f 'synapse.app.homeserver -c homeserver.yaml'); do ps -o rss= -p "$pid"; done)
echo "$rss_kb" | awk -v total_kb="$(awk '/MemTotal/ {print $2}' /proc/meminfo)" '
  { sum += $1; n++ }
  END {
    avg = sum / n
    printf "idle Synapse resident memory: %.0f MiB on average over %d\n", avg / 1024, n
    printf "idle homeservers that fit in %.1f GiB (2 GiB kept): %d\n", total_kb / 1048576, (total_kb - 2 * 1048576) / avg
  }'
