#!/usr/bin/env bash
# Installs the tools Quiver's build and tests need, at pinned versions.
# Idempotent: what is already there at the right version is skipped.
#
#   scripts/setup.sh              everything (the build's tools and Chromium)
#   scripts/setup.sh build        what building the release needs (no Chromium)
#
# wasm-bindgen is not installed: scripts/build.sh builds its library into
# its own tool (scripts/wasm-split) beside the release.
set -euo pipefail
what=${1:-all}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

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

# npm packages: Playwright, and binaryen's wasm-opt and terser that scripts/build.sh
# runs (Debian's binaryen produces WASM that does not hydrate).
# npm's own copy of the lock file in node_modules differs from it by the root
# entry, so the lock file installed is kept beside it for the comparison.
if ! cmp -s end2end/package-lock.json end2end/node_modules/.installed-package-lock.json 2>/dev/null; then
  say "installing npm packages in end2end/"
  (cd end2end && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-package-lock.json)
fi

[ "$what" = all ] || { say "build tools ready: wasm-opt $(end2end/node_modules/.bin/wasm-opt --version | awk '{print $3}'), node $(node --version)"; exit 0; }
say "tools ready: wasm-opt $(end2end/node_modules/.bin/wasm-opt --version | awk '{print $3}'), node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1)"
