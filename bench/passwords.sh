#!/usr/bin/env bash
# Benchmark (not a test): password verifications per second at the configured bcrypt cost (first
# argument, default 12) next to the machine's limit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/../scripts/setup.sh" >/dev/null
source "$here/../scripts/env.sh"
cd "$PORTAL_ROOT"
$PORTAL_CARGO run -q --release -p domain --example password_bench -- "${1:-12}"
