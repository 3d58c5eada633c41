#!/usr/bin/env bash
# Starts the portal on the embedded default (SQLite in ./data) at http://127.0.0.1:3000, or at
# LEPTOS_SITE_ADDR. Installs what it lacks on first use.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
bash "$here/build-site.sh"
source "$here/env.sh"
cd "$PORTAL_ROOT"
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$CARGO_TARGET_DIR/site}"
exec $PORTAL_CARGO run -q -p server -- "$@"
