#!/usr/bin/env bash
# Builds the playground for the browser and serves it on http://127.0.0.1:${PORT:-8765}/.
# Needs only Rust (the wasm32-unknown-unknown target is added if missing) and Python 3.
set -euo pipefail
cd "$(dirname "$0")"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
cargo build --release -p ndoptim-playground --lib --target wasm32-unknown-unknown
cp "${CARGO_TARGET_DIR:-../target}/wasm32-unknown-unknown/release/ndoptim_playground.wasm" www/
if [ "${1:-}" = "--build-only" ]; then exit 0; fi
echo "the playground: http://127.0.0.1:${PORT:-8765}/"
exec python3 -m http.server "${PORT:-8765}" --bind 127.0.0.1 --directory www
