#!/usr/bin/env bash
# Installs the tools Quiver's build and tests need, at pinned versions.
# Idempotent: what is already there at the right version is skipped.
#
#   scripts/setup.sh              everything (the build's tools and Chromium)
#   scripts/setup.sh build        what building the release needs (no Chromium)
#   scripts/setup.sh wasm-bindgen only the wasm-bindgen CLI (scripts/build.sh
#                                 compiles it beside the release when missing)
set -euo pipefail
what=${1:-all}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The wasm-bindgen CLI must equal the library version locked in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

say() { echo "setup: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null; then
  say "cargo is missing: install Rust with rustup first (rust-toolchain 1.95 or newer)"
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$what" = all ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q chromium
fi

wasm_bindgen_ready() { [ "$(wasm-bindgen --version 2>/dev/null || true)" = "wasm-bindgen $WASM_BINDGEN_VERSION" ]; }
install_wasm_bindgen() {
  wasm_bindgen_ready && return
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # --locked fails for this crate (a locked transitive version is gone from the registry).
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
}
case "$what" in
  wasm-bindgen) install_wasm_bindgen; exit 0 ;;
  # For `build`, scripts/build.sh compiles it beside the release instead.
  all) install_wasm_bindgen ;;
esac

# npm packages: Playwright, and binaryen's wasm-opt that scripts/build.sh
# runs (Debian's binaryen produces WASM that does not hydrate).
# npm's own copy of the lock file in node_modules differs from it by the root
# entry, so the lock file installed is kept beside it for the comparison.
if ! cmp -s end2end/package-lock.json end2end/node_modules/.installed-package-lock.json 2>/dev/null; then
  say "installing npm packages in end2end/"
  (cd end2end && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-package-lock.json)
fi

[ "$what" = all ] || { say "build tools ready: wasm-opt $(end2end/node_modules/.bin/wasm-opt --version | awk '{print $3}'), node $(node --version)"; exit 0; }
say "tools ready: $(wasm-bindgen --version), wasm-opt $(end2end/node_modules/.bin/wasm-opt --version | awk '{print $3}'), node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1)"
