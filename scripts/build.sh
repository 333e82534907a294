#!/usr/bin/env bash
# Builds the release: the `quiver` binary (target/release/quiver) and the site
# it serves (target/site): the hydrate crate compiled to WASM and split into
# the main module and the modules of the pages loaded on demand, their
# JavaScript glue and loader, the stylesheet, each named after one hash of
# the bundle's content and stored beside its brotli and gzip forms.
#
# Tools: cargo and node with end2end/node_modules (binaryen's wasm-opt and terser),
# installed by scripts/setup.sh, and scripts/wasm-split (the splitter and
# wasm-bindgen's glue generator, built here into target/tools).
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

# The splitter also generates wasm-bindgen's glue: its wasm-bindgen must be
# the one the WASM is built with.
locked_version() { awk -v crate="$1" '$0 == "name = \"" crate "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$2"; }
bindgen_version=$(locked_version wasm-bindgen Cargo.lock)
tool_version=$(locked_version wasm-bindgen-cli-support scripts/wasm-split/Cargo.lock)
if [ -z "$bindgen_version" ] || [ "$bindgen_version" != "$tool_version" ]; then
  say "scripts/wasm-split locks wasm-bindgen-cli-support $tool_version, the workspace wasm-bindgen $bindgen_version: make them equal"
  exit 1
fi
say "compiling the server (release) and the WASM bundle (wasm-release)"
cargo build --locked --release -p server --bin "$NAME" &
server=$!
# The splitter needs the linker's relocations; passed to the last crate
# only, so that the dependencies stay the same build as for every other
# WASM command.
cargo rustc --locked -p frontend --lib --target wasm32-unknown-unknown \
  --profile wasm-release --target-dir "$FRONT_TARGET" -- -C link-arg=--emit-relocs &
front=$!
# On a fresh machine the splitter compiles meanwhile: it is needed only
# once the WASM is built, and fills the cores while a build links.
cargo build --locked --release --manifest-path scripts/wasm-split/Cargo.toml \
  --target-dir target/tools --quiet &
splitter=$!
# The site is made as soon as the WASM and the splitter are ready, while
# the server still compiles: its last crates leave a core free.
failed=0
wait "$front" || failed=1
wait "$splitter" || failed=1
if [ "$failed" != 0 ]; then
  # No site without the WASM: the server's compile need not finish first.
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  say "compilation failed"
  exit 1
fi
compiled=$(date +%s)

work=$(mktemp -d target/site.XXXXXX)
trap 'rm -rf "$work"; kill "$server" 2>/dev/null || true' EXIT
mkdir -p "$work/pkg" "$work/split"

# The files name each other (the glue imports the loader, the loader the
# glue and the page modules: it fetches a page's modules when the page is
# first shown), so they are written with this placeholder,
# as long as the hash, in place of the hash, and renamed once it is known.
PLACEHOLDER=____________________
SPLIT=__wasm_split
tool=target/tools/release/quiver-wasm-split
"$tool" split "$WASM" "$work/split" "$NAME.$PLACEHOLDER.js" "$SPLIT.$PLACEHOLDER.js"
"$tool" bindgen "$work/split/main.wasm" "$work/bindgen" "$NAME"
rm "$work/split/main.wasm"
# Debian's binaryen produces WASM that fails to hydrate; this is npm's.
# Without its inlining pass: the code is then 4 % larger but compresses
# better, and the browser downloads it compressed (docs/BENCHMARKS.md:
# main module 246.5 KB brotli with `-Oz`, 231.7 KB without the inlining).
optimize() {
  wasm-opt -Oz --skip-pass=inlining-optimizing --enable-bulk-memory --enable-nontrapping-float-to-int "$@"
}
optimize "$work/bindgen/${NAME}_bg.wasm" -o "$work/$NAME.wasm" &
main_module=$!
# The page modules beside it, one per core.
export -f optimize
ls "$work"/split/*.wasm | xargs -P "$(nproc)" -I{} bash -c 'optimize "$1" -o "$1"' _ {}
wait "$main_module"
# The glue and the loader, minified (names inside them only: what they
# export and the names the WASM imports stay).
minify() { terser "$1" --module --compress --mangle -o "$2"; }
minify "$work/bindgen/$NAME.js" "$work/$NAME.js"
minify "$work/split/$SPLIT.$PLACEHOLDER.js" "$work/split/$SPLIT.$PLACEHOLDER.min.js"
mv "$work/split/$SPLIT.$PLACEHOLDER.min.js" "$work/split/$SPLIT.$PLACEHOLDER.js"
cp style/main.css "$work/$NAME.css"

# One hash names every file of the bundle: they are loaded together.
hash=$(cat "$work/$NAME.js" "$work/$NAME.wasm" "$work/$NAME.css" "$work/split"/* | sha256sum | cut -c1-20)
[ ${#hash} = ${#PLACEHOLDER} ]
for ext in js wasm css; do
  mv "$work/$NAME.$ext" "$work/pkg/$NAME.$hash.$ext"
done
mv "$work/split/$SPLIT.$PLACEHOLDER.js" "$work/pkg/$SPLIT.$hash.js"
modules=()
for f in "$work"/split/*.wasm; do
  stem=$(basename "$f" .wasm)
  modules+=("$stem")
  mv "$f" "$work/pkg/$stem.$hash.wasm"
done
# The same replacement in the glue and in the main module's import names
# (equal lengths keep the WASM valid); the loader names the glue and the
# modules.
perl -0777 -pi -e "s/\Q$SPLIT.$PLACEHOLDER.js\E/$SPLIT.$hash.js/g" \
  "$work/pkg/$NAME.$hash.js" "$work/pkg/$NAME.$hash.wasm"
perl -0777 -pi -e "s/\Q$NAME.$PLACEHOLDER.js\E/$NAME.$hash.js/g; s/\\.\/((?:split|chunk)_\w+)\.wasm/.\/\$1.$hash.wasm/g" \
  "$work/pkg/$SPLIT.$hash.js"
for stem in "${modules[@]}"; do
  grep -q "\./$stem\.$hash\.wasm" "$work/pkg/$SPLIT.$hash.js" || { say "the loader does not name $stem"; exit 1; }
done
rm -rf "$work/bindgen" "$work/split"
printf 'js: %s\nwasm: %s\ncss: %s\n' "$hash" "$hash" "$hash" > "$work/hash.txt"
cp -R style/assets/. "$work/"
node scripts/compress.mjs "$work/pkg"/*.js "$work/pkg"/*.wasm "$work/pkg"/*.css
made=$(date +%s)
wait "$server" || { say "compiling the server failed"; exit 1; }

# Every server-function URL the WASM calls must be one the server answers.
urls() { grep -aoE '/rpc/[a-z_]+[0-9]+' "$1" | sort -u; }
cat "$work/pkg"/*.wasm | urls /dev/stdin > "$work/wasm-urls"
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
for f in "$SITE/pkg/$NAME.$hash".{wasm,js,css} "$SITE/pkg/$SPLIT.$hash.js" "$SITE/pkg"/split_*.wasm; do
  say "$(basename "$f"): $(size "$f") B, gzip $(size "$f.gz") B, brotli $(size "$f.br") B"
done
shared=$(cat "$SITE/pkg"/chunk_*.wasm.br 2>/dev/null | wc -c)
say "$(ls "$SITE/pkg"/chunk_*.wasm 2>/dev/null | wc -l) modules of code the pages share: brotli $shared B"
say "WASM compiled in $((compiled - started)) s, site made in $((made - compiled)) s, all done in $(( $(date +%s) - started )) s: target/release/$NAME and $SITE"
