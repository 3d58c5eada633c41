# Sourced by the other scripts: one toolchain and one target dir for every command.
# Chooses rustup's toolchain when it has the wasm32 target, else Debian's rustc-web (see
# scripts/setup.sh, which installs whichever is possible).
PORTAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PORTAL_ROOT
export PORTAL_TOOLS="${PORTAL_TOOLS:-$HOME/.cache/portal-tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portal-target}"
# The Synapse that scripts/setup.sh installs, for the local homeserver driver.
export PORTAL_SYNAPSE_PYTHON="${PORTAL_SYNAPSE_PYTHON:-$PORTAL_TOOLS/synapse/bin/python}"
export PATH="$PORTAL_TOOLS/bin:$PORTAL_TOOLS/node_modules/.bin:$PATH"

if [ -f "$PORTAL_TOOLS/toolchain" ] && [ "$(cat "$PORTAL_TOOLS/toolchain")" = rustup ]; then
  # Undo the Debian settings in case this file was sourced before the choice was made.
  unset RUSTC RUSTDOC RUSTC_BOOTSTRAP CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER __CARGO_TESTS_ONLY_SRC_ROOT
  export PORTAL_CARGO="cargo"
  export PORTAL_WASM_BUILD_STD=""
else
  # Debian's rustc-web builds std for wasm32 from rust-web-src (-Zbuild-std).
  export RUSTC=/usr/bin/rustc
  export RUSTDOC=/usr/bin/rustdoc
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
  export __CARGO_TESTS_ONLY_SRC_ROOT=/usr/lib/rustlib/src/rust/library
  export PORTAL_CARGO="/usr/bin/cargo"
  export PORTAL_WASM_BUILD_STD="-Zbuild-std=std,panic_abort"
fi
