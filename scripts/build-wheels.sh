#!/usr/bin/env bash
# Build runretry's two wheels into target/wheels (needs Rust and maturin; installing them does not):
#   runretry      the Python package (abi3: CPython 3.10+), the default policy embedded;
#   runretry-cli  the `runretry` command line.
# Both are tagged manylinux2014 (glibc 2.17): they install on Debian 9+, RHEL/CentOS 7+, Amazon
# Linux 2. maturin links them with zig against glibc 2.17's symbols, whatever the build machine's
# glibc (pip install ziglang). They build into target/x86_64-unknown-linux-gnu, apart from
# `cargo test`'s own build: the first run builds wasmtime again.
#
#   scripts/build-wheels.sh              # the workspace's dev profile (dependencies optimised)
#   scripts/build-wheels.sh --release    # a release build
#
# maturin is taken from PATH, else `python3 -m maturin` (pip install 'maturin>=1.16,<2' ziglang).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${RUNRETRY_WHEEL_DIR:-target/wheels}"
profile=()
if [[ "${1:-}" == "--release" ]]; then
    profile=(--profile release)
fi
if command -v maturin >/dev/null; then maturin=(maturin); else maturin=(python3 -m maturin); fi
out="$(mkdir -p "$out" && cd "$out" && pwd)"
rm -f "$out"/runretry-*.whl "$out"/runretry_cli-*.whl  # earlier builds' wheels would install beside these
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true  # the default policy guest is built from source
linux=(--zig --compatibility manylinux2014)
if ! command -v zig >/dev/null && ! python3 -c "import ziglang" 2>/dev/null; then
    echo "build-wheels.sh: maturin links the manylinux2014 wheels with zig: pip install ziglang" >&2
    exit 2
fi
(cd python && "${maturin[@]}" build --quiet "${profile[@]}" "${linux[@]}" --out "$out")
(cd cli-wheel && "${maturin[@]}" build --quiet "${profile[@]}" "${linux[@]}" --out "$out")
ls -l "$out"/*.whl
