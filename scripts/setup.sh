#!/usr/bin/env bash
# Installs what building and testing the portal needs, once; later runs find it and return fast.
# Rust: rustup's toolchain with the wasm32 target where it can be had (an ordinary online
# machine); otherwise Debian's rustc-web, which builds the wasm32 std from source.
# Tools go to $PORTAL_TOOLS (default ~/.cache/portal-tools), outside the checkout.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
mkdir -p "$PORTAL_TOOLS/bin"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install: ${missing[*]}" >&2; return 1
  fi
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -q; apt_updated=1; fi
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
}

# 1. Rust toolchain with a wasm32 std.
if [ ! -f "$PORTAL_TOOLS/toolchain" ]; then
  choice=debian
  if command -v rustup >/dev/null; then
    if rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown \
      || timeout 60 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
      choice=rustup
    fi
  fi
  echo "$choice" > "$PORTAL_TOOLS/toolchain"
  source "$here/env.sh"
fi
if [ "$(cat "$PORTAL_TOOLS/toolchain")" = debian ]; then
  apt_install rustc-web cargo-web rust-web-src rust-web-clippy rustfmt-web lld-22
fi

# 2. System packages: compression tools for the built assets, Node.js for wasm-opt; with
#    --test, Chromium, the PostgreSQL client and poppler-utils (pdftotext reads the invoice
#    PDFs back) for the tests.
apt_install brotli gzip ca-certificates
command -v npm >/dev/null || apt_install nodejs npm
if [ "${1:-}" = "--test" ]; then
  apt_install chromium postgresql-client poppler-utils
fi

# 3a. With --test: Python test servers in a virtualenv: aiosmtpd (a real SMTP server),
#     localstripe (a stateful Stripe-compatible server, run behind end2end/stripe-compat.py),
#     and kubernetes-validate (Kubernetes' own schemas, for the Kubernetes driver's objects).
if [ "${1:-}" = "--test" ] && ! "$PORTAL_TOOLS/venv/bin/python" -c 'import aiosmtpd, localstripe, kubernetes_validate' 2>/dev/null; then
  [ -x "$PORTAL_TOOLS/venv/bin/python" ] || python3 -m venv "$PORTAL_TOOLS/venv" 2>/dev/null \
    || { apt_install python3-venv; python3 -m venv "$PORTAL_TOOLS/venv"; }
  "$PORTAL_TOOLS/venv/bin/pip" install -q aiosmtpd==1.4.6 localstripe==1.15.10 kubernetes-validate==1.37.0
fi

# 3b. Synapse (pinned), which the local driver runs for every homeserver, in a virtualenv of
#     its own (its dependencies are not the test servers'); scripts/env.sh points
#     PORTAL_SYNAPSE_PYTHON at it.
synapse_version=1.163.2
if ! "$PORTAL_TOOLS/synapse/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__ != '$synapse_version')" 2>/dev/null; then
  echo "setup: installing Synapse $synapse_version (about a minute)"
  [ -x "$PORTAL_TOOLS/synapse/bin/python" ] || python3 -m venv "$PORTAL_TOOLS/synapse" 2>/dev/null \
    || { apt_install python3-venv; python3 -m venv "$PORTAL_TOOLS/synapse"; }
  "$PORTAL_TOOLS/synapse/bin/pip" install -q "matrix-synapse==$synapse_version"
fi

# 3. wasm-bindgen CLI: exactly the version of the wasm-bindgen crate in Cargo.lock.
wb_version="$(grep -A1 '^name = "wasm-bindgen"$' "$PORTAL_ROOT/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
if ! "$PORTAL_TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $wb_version\$"; then
  echo "setup: installing wasm-bindgen-cli $wb_version (a few minutes)"
  CARGO_TARGET_DIR="$PORTAL_TOOLS/build" $PORTAL_CARGO install -q wasm-bindgen-cli \
    --version "$wb_version" --root "$PORTAL_TOOLS" --force
fi

# 4. wasm-opt from npm's binaryen (Debian's older wasm-opt breaks hydration).
if [ ! -x "$PORTAL_TOOLS/node_modules/.bin/wasm-opt" ]; then
  (cd "$PORTAL_TOOLS" && npm install --no-audit --no-fund --silent binaryen@132)
fi
echo "setup: ready ($(cat "$PORTAL_TOOLS/toolchain") toolchain, $($PORTAL_CARGO --version))"
