#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests, and prints the URL
# the tests use. Installs and starts a cluster where none runs; sets a password for the
# `postgres` role where 127.0.0.1 does not trust local connections.
set -euo pipefail
url="${PORTAL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

can_connect() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "postgres: installing the server" >&2
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql >&2
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "postgres: starting cluster $version/main" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! can_connect "$url"; then
  # Password authentication on 127.0.0.1: give the postgres role a test password.
  password="portal-test"
  $SUDO -u postgres psql -Atqc "ALTER ROLE postgres PASSWORD '$password'" >/dev/null 2>&1 \
    || su postgres -c "psql -Atqc \"ALTER ROLE postgres PASSWORD '$password'\"" >/dev/null
  url="postgres://postgres:$password@127.0.0.1:5432/postgres"
fi
if ! can_connect "$url"; then
  echo "postgres: cannot connect to $url" >&2
  exit 1
fi
echo "$url"
