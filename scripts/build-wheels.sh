#!/usr/bin/env bash
# Build runretry's two wheels into target/wheels (needs Rust and maturin; installing them does not):
#   runretry      the Python package (abi3: CPython 3.10+), the default policy embedded;
#   runretry-cli  the `runretry` command line.
#
#   scripts/build-wheels.sh              # the workspace's dev profile (dependencies optimised)
#   scripts/build-wheels.sh --release    # a release build (a second full build of wasmtime)
#
# maturin is taken from PATH, else `python3 -m maturin` (pip install 'maturin>=1.16,<2').
set -euo pipefail
cd "$(dirname "$0")/.."
out="${RUNRETRY_WHEEL_DIR:-target/wheels}"
profile=()
if [[ "${1:-}" == "--release" ]]; then
    profile=(--profile release)
fi
if command -v maturin >/dev/null; then maturin=(maturin); else maturin=(python3 -m maturin); fi
out="$(mkdir -p "$out" && cd "$out" && pwd)"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true  # the default policy guest is built from source
(cd python && "${maturin[@]}" build --quiet "${profile[@]}" --out "$out")
(cd cli-wheel && "${maturin[@]}" build --quiet "${profile[@]}" --out "$out")
ls -l "$out"/*.whl
