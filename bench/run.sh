#!/usr/bin/env bash
# Benchmark (not a test): release build, then with wrk and `Accept-Encoding: br, gzip`,
# requests/s and p50/p99 latency for the landing page, the 404 page, /healthz and a bare axum
# "hello" route, and for the signed-in pages (/dashboard, /account, /billing of one customer
# with no homeserver) on SQLite and on PostgreSQL, all in the same run on this machine;
# start-up time to ready on SQLite; and the raw, gzip and brotli sizes of the WASM, JS and CSS
# the landing page loads.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh"
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }

export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
bash scripts/build-site.sh >/dev/null
$PORTAL_CARGO build -q --release -p server --bin server --example hello
bin="$CARGO_TARGET_DIR/release"

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
data="$(mktemp -d)"
pids=()
pg_admin_url="$(bash scripts/postgres.sh)"
pg_db="portal_bench_$$"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$data"
  psql "$pg_admin_url" -qc "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
source "$here/lib.sh"

# Start-up to ready, on a fresh SQLite database (best of three starts).
best=""
for i in 1 2 3; do
  rm -rf "$data/start"; mkdir -p "$data/start"
  t0=$(date +%s%N)
  LEPTOS_SITE_ADDR=127.0.0.1:3998 PORTAL_DATA_DIR="$data/start" RUST_LOG=warn "$bin/server" & pid=$!
  until curl -fs -o /dev/null http://127.0.0.1:3998/readyz; do sleep 0.005; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
echo "start-up to ready (SQLite, fresh database, best of 3): ${best} ms"

LEPTOS_SITE_ADDR=127.0.0.1:3997 PORTAL_DATA_DIR="$data/run" RUST_LOG=warn "$bin/server" & pids+=($!)
"$bin/examples/hello" 127.0.0.1:3996 & pids+=($!)
until curl -fs -o /dev/null http://127.0.0.1:3997/readyz && curl -fs -o /dev/null http://127.0.0.1:3996/; do sleep 0.05; done

echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, Accept-Encoding: br, gzip"
hello=$(measure "axum hello" http://127.0.0.1:3996/)
measure "/healthz" http://127.0.0.1:3997/healthz >/dev/null
landing=$(measure "landing page" http://127.0.0.1:3997/)
awk -v l="$landing" -v h="$hello" 'BEGIN { printf "landing page = %.0f %% of bare axum\n", 100 * l / h }'
missing=$(ALLOW_NON_2XX=1 measure "404 page" http://127.0.0.1:3997/no/such/page)
awk -v m="$missing" -v l="$landing" 'BEGIN { printf "404 page = %.0f %% of the landing page\n", 100 * m / l }'

signed_in_pages() { # label base url
  local cookie rps
  cookie=$(signed_in_cookie "$2")
  for page in /dashboard /account /billing; do
    rps=$(measure "$page ($1)" "$2$page" "$cookie")
    awk -v r="$rps" -v h="$hello" -v p="$page" -v d="$1" \
      'BEGIN { printf "%s on %s = %.0f %% of bare axum\n", p, d, 100 * r / h }'
  done
}
signed_in_pages SQLite http://127.0.0.1:3997

psql "$pg_admin_url" -qc "CREATE DATABASE $pg_db" >/dev/null
LEPTOS_SITE_ADDR=127.0.0.1:3995 PORTAL_DATA_DIR="$data/pg" DATABASE_URL="${pg_admin_url%/*}/$pg_db" \
  RUST_LOG=warn "$bin/server" & pids+=($!)
until curl -fs -o /dev/null http://127.0.0.1:3995/readyz; do sleep 0.05; done
signed_in_pages PostgreSQL http://127.0.0.1:3995

echo "first load (what the landing page loads):"
pkg="$LEPTOS_SITE_ROOT/pkg"
total_raw=0; total_gz=0; total_br=0
for f in $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["wasm"], m["js"], m["css"])' "$pkg/manifest.json"); do
  raw=$(stat -c %s "$pkg/$f"); gz=$(stat -c %s "$pkg/$f.gz"); br=$(stat -c %s "$pkg/$f.br")
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz)); total_br=$((total_br + br))
  printf '  %-34s raw %8d   gzip %8d   brotli %8d bytes\n' "$f" "$raw" "$gz" "$br"
done
printf '  %-34s raw %8d   gzip %8d   brotli %8d bytes\n' "total" "$total_raw" "$total_gz" "$total_br"
