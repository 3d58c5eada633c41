#!/usr/bin/env bash
# Runs every test: unit and integration tests on SQLite and PostgreSQL, then the browser tests
# in Chromium with JavaScript on and off. Installs what it lacks on first use.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh" --test
source "$here/env.sh"
cd "$PORTAL_ROOT"

PORTAL_TEST_POSTGRES_URL="$(bash "$here/postgres.sh")"
export PORTAL_TEST_POSTGRES_URL
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$CARGO_TARGET_DIR/site}"
export PORTAL_TEST_PYTHON="$PORTAL_TOOLS/venv/bin/python"

bash "$here/build-site.sh"
# Node packages: Playwright, and the OpenID provider (oauth2-mock-server) the server tests run.
(cd end2end && { [ -d node_modules/@playwright/test ] && [ -d node_modules/oauth2-mock-server ] \
  || npm ci --no-audit --no-fund; })

echo "== cargo test (SQLite and PostgreSQL)"
$PORTAL_CARGO test --workspace

echo "== browser tests (Chromium, hydrated and without JavaScript)"
# `cargo test` built the server binary along with the integration tests.
export PORTAL_SERVER_BIN="$CARGO_TARGET_DIR/debug/server"
(cd end2end && npx playwright test)
