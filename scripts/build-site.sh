#!/usr/bin/env bash
# Builds the browser side: the app compiled to WASM (feature `hydrate`), its JS glue, and the
# stylesheet, named by content hash under $LEPTOS_SITE_ROOT/pkg with a manifest.json the server
# reads. The same steps cargo-leptos performs, driven by script so CI needs no cargo-leptos.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PORTAL_ROOT"

site_root="${LEPTOS_SITE_ROOT:-$CARGO_TARGET_DIR/site}"
profile=wasm-release
# shellcheck disable=SC2086
$PORTAL_CARGO build -p app --lib --target wasm32-unknown-unknown --no-default-features \
  --features hydrate --profile "$profile" $PORTAL_WASM_BUILD_STD

pkg="$site_root/pkg"
# The steps below take seconds (wasm-opt, brotli -q 11) and give the same files for the same
# inputs: skip them when the WASM, the stylesheet, this script and the tools are what they were
# (the stamp lives beside pkg/, which is served, not in it).
stamp="$site_root/site-inputs"
inputs="$( { cat "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/app.wasm" style/main.css "${BASH_SOURCE[0]}"
  wasm-bindgen --version; wasm-opt --version; } | sha256sum | cut -c1-64)"
if [ -f "$pkg/manifest.json" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "site unchanged in $pkg"
  exit 0
fi

work="$CARGO_TARGET_DIR/site-build"
rm -rf "$work" && mkdir -p "$work"
wasm-bindgen --target web --no-typescript --out-dir "$work" --out-name portal \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/app.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$work/portal_bg.wasm" -o "$work/portal_bg.opt.wasm"

hash() { sha256sum "$1" | cut -c1-16; }
js="portal.$(hash "$work/portal.js").js"
wasm="portal.$(hash "$work/portal_bg.opt.wasm").wasm"
css="portal.$(hash style/main.css).css"

rm -rf "$pkg" && mkdir -p "$pkg"
cp "$work/portal.js" "$pkg/$js"
cp "$work/portal_bg.opt.wasm" "$pkg/$wasm"
cp style/main.css "$pkg/$css"
# Pre-compressed copies, served as-is to clients that accept them.
for f in "$pkg/$js" "$pkg/$wasm" "$pkg/$css"; do
  gzip -9 -k -n "$f"
  brotli -q 11 -k "$f"
done
printf '{"js":"%s","wasm":"%s","css":"%s"}\n' "$js" "$wasm" "$css" > "$pkg/manifest.json"
echo "$inputs" > "$stamp"
echo "site built in $pkg: $js $wasm $css"
