#!/usr/bin/env bash
# Benchmark (not a test): sign-ins per second at the configured bcrypt cost next to the machine's
# limit (hashing threads ÷ the time of one hash, from bench/passwords.sh), and the landing page's
# latency while a storm of sign-ins runs (target: p99 under 50 ms). Release build, SQLite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh" >/dev/null
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
bash scripts/build-site.sh >/dev/null
$PORTAL_CARGO build -q --release -p server --bin server
bin="$CARGO_TARGET_DIR/release"

DURATION="${BENCH_DURATION:-15s}"
STORM="${BENCH_STORM_CONNECTIONS:-32}"
data="$(mktemp -d)"
addr=127.0.0.1:3995
export BENCH_ORIGIN="http://$addr"
# The per-IP limit would stop a storm from one address after 20 attempts; lift it for the run.
LEPTOS_SITE_ADDR=$addr PORTAL_DATA_DIR="$data" PORTAL_AUTH_ATTEMPTS_PER_MINUTE=1000000 \
  RUST_LOG=warn "$bin/server" & pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
until curl -fs -o /dev/null "http://$addr/readyz"; do sleep 0.05; done
curl -fs -o /dev/null -H "Origin: http://$addr" \
  -d "email=storm%40example.com&password=correct+horse+battery+staple&display_name=Storm&age=on&terms=on" \
  "http://$addr/sign-up"

quiet=$(wrk -t1 -c8 -d5s --latency -H 'Accept-Encoding: br, gzip' "http://$addr/")
echo "landing page alone (wrk -c8):  p50 $(awk '$1=="50%" {print $2}' <<<"$quiet")  p99 $(awk '$1=="99%" {print $2}' <<<"$quiet")"

wrk -t1 -c"$STORM" -d"$DURATION" --latency --timeout 30s -s bench/signin_storm.lua "http://$addr/sign-in" > "$data/storm.txt" &
storm=$!
sleep 2
during=$(wrk -t1 -c8 -d10s --latency -H 'Accept-Encoding: br, gzip' "http://$addr/")
wait $storm
echo "sign-in storm (wrk -c$STORM, $DURATION): $(awk '/Requests\/sec/ {print $2}' "$data/storm.txt") sign-ins/s, p99 $(awk '$1=="99%" {print $2}' "$data/storm.txt" || true)"
echo "landing page during the storm (wrk -c8): $(awk '/Requests\/sec/ {print $2}' <<<"$during") req/s  p50 $(awk '$1=="50%" {print $2}' <<<"$during")  p99 $(awk '$1=="99%" {print $2}' <<<"$during")"
echo "hashing threads: $(( $(nproc) > 1 ? $(nproc) - 1 : 1 )) (cores - 1); the limit is threads ÷ one hash's time (bench/passwords.sh)"
