#!/usr/bin/env bash
# Builds the release: the `quiver` binary (target/release/quiver) and the site
# it serves (target/site): the hydrate crate compiled to WASM, its JavaScript
# glue from wasm-bindgen, the stylesheet, each named after a hash of the
# bundle's content and stored beside its brotli and gzip forms.
#
# Tools: cargo, the wasm-bindgen CLI and node with end2end/node_modules
# (binaryen's wasm-opt), all installed by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"

NAME=quiver
SITE=target/site
# The WASM build has its own target folder: the two builds then run side by
# side instead of waiting for each other's lock.
FRONT_TARGET=target/front
WASM=$FRONT_TARGET/wasm32-unknown-unknown/wasm-release/frontend.wasm

say() { echo "build: $*" >&2; }
started=$(date +%s)

say "compiling the server (release) and the WASM bundle (wasm-release)"
cargo build --locked --release -p server --bin "$NAME" &
server=$!
cargo build --locked -p frontend --lib --target wasm32-unknown-unknown \
  --profile wasm-release --target-dir "$FRONT_TARGET" &
front=$!
# On a fresh machine the wasm-bindgen CLI compiles meanwhile: it is needed
# only once the WASM is built, and fills the cores while a build links.
scripts/setup.sh wasm-bindgen &
tools=$!
failed=0
wait "$server" || failed=1
wait "$front" || failed=1
wait "$tools" || failed=1
[ "$failed" = 0 ] || { say "compilation failed"; exit 1; }
compiled=$(date +%s)

work=$(mktemp -d target/site.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pkg"

wasm-bindgen --target web --no-typescript --out-name "$NAME" --out-dir "$work/bindgen" "$WASM"
# Debian's binaryen produces WASM that fails to hydrate; this is npm's.
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$work/bindgen/${NAME}_bg.wasm" -o "$work/bindgen/$NAME.wasm"
cp "$work/bindgen/$NAME.js" "$work/bindgen/$NAME.wasm" "$work/"
cp style/main.css "$work/$NAME.css"

# One hash names the three files: the page links them together.
hash=$(cat "$work/$NAME.js" "$work/$NAME.wasm" "$work/$NAME.css" | sha256sum | cut -c1-20)
for ext in js wasm css; do
  mv "$work/$NAME.$ext" "$work/pkg/$NAME.$hash.$ext"
done
rm -rf "$work/bindgen"
printf 'js: %s\nwasm: %s\ncss: %s\n' "$hash" "$hash" "$hash" > "$work/hash.txt"
cp -R style/assets/. "$work/"
node scripts/compress.mjs "$work/pkg"/*

# Every server-function URL the WASM calls must be one the server answers.
urls() { grep -aoE '/rpc/[a-z_]+[0-9]+' "$1" | sort -u; }
urls "$work/pkg/$NAME.$hash.wasm" > "$work/wasm-urls"
urls "target/release/$NAME" > "$work/server-urls"
# The URLs sit among other data in both files, and a digit that happens to
# follow one lengthens the match: a URL counts as answered when one of the
# other file's matches starts with it, or it with one of them.
missing=$(awk 'NR == FNR { server[NR] = $0; n = NR; next }
  { found = 0
    for (i = 1; i <= n; i++) {
      if (index(server[i], $0) == 1 || index($0, server[i]) == 1) { found = 1; break }
    }
    if (!found) print }' "$work/server-urls" "$work/wasm-urls")
if [ ! -s "$work/wasm-urls" ] || [ -n "$missing" ]; then
  say "the WASM calls server functions the server does not have: ${missing:-(no /rpc/ URL found in the WASM)}"
  exit 1
fi
rm "$work/wasm-urls" "$work/server-urls"

rm -rf "$SITE"
mv "$work" "$SITE"
trap - EXIT
chmod 755 "$SITE"

size() { stat -c %s "$1"; }
for ext in wasm js css; do
  f="$SITE/pkg/$NAME.$hash.$ext"
  say "$(basename "$f"): $(size "$f") B, gzip $(size "$f.gz") B, brotli $(size "$f.br") B"
done
say "compiled in $((compiled - started)) s, site made in $(( $(date +%s) - compiled )) s: target/release/$NAME and $SITE"
