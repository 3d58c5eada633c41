#!/usr/bin/env bash
# Benchmark (not a test): acknowledged Stripe webhook events per second and the p99 latency of
# the acknowledgement, on SQLite and on PostgreSQL (target: at least 2,000/s on PostgreSQL).
# Every event is distinct and signed, so each one is verified, inserted and gets its job.
# Release build; the job runner is held back so only acknowledgement is measured.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh" >/dev/null
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
bash scripts/build-site.sh >/dev/null
[ -n "${BENCH_SKIP_BUILD:-}" ] || $PORTAL_CARGO build -q --release -p server --bin server
bin="$CARGO_TARGET_DIR/release/server"
pg_base="$(bash scripts/postgres.sh)"

DURATION="${BENCH_DURATION:-15s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
secret=whsec_bench
addr=127.0.0.1:3996
data="$(mktemp -d)"
trap 'kill ${pid:-} 2>/dev/null || true; rm -rf "$data"' EXIT

run() { # name database-url
  rm -rf "$data/site" && mkdir -p "$data/site"
  python3 bench/webhook_events.py 150000 "$secret" "$data/events.tsv"
  LEPTOS_SITE_ADDR=$addr PORTAL_DATA_DIR="$data/site" DATABASE_URL="$2" RUST_LOG=warn \
    PORTAL_JOB_POLL_SECONDS=86400 STRIPE_SECRET_KEY=sk_test_bench STRIPE_PUBLISHABLE_KEY=pk_test_bench \
    STRIPE_WEBHOOK_SECRET=$secret STRIPE_API_BASE=http://127.0.0.1:9 "$bin" & pid=$!
  until curl -fs -o /dev/null "http://$addr/readyz"; do sleep 0.05; done
  out=$(BENCH_EVENTS="$data/events.tsv" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s bench/webhooks.lua "http://$addr")
  kill $pid; wait $pid 2>/dev/null || true
  echo "$1: $(awk '/Requests\/sec/ {print $2}' <<<"$out") events/s acknowledged, p50 $(awk '$1=="50%" {print $2}' <<<"$out"), p99 $(awk '$1=="99%" {print $2}' <<<"$out"); $(grep acknowledged <<<"$out")"
}

run "SQLite" "sqlite://$data/site/bench.sqlite3"
db="portal_bench_webhooks"
psql "$pg_base" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
run "PostgreSQL" "${pg_base%/*}/$db"
psql "$pg_base" -qc "DROP DATABASE IF EXISTS $db"
