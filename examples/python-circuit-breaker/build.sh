#!/usr/bin/env sh
# Build the Python circuit breaker into a component: `OUT=policy.wasm sh build.sh`. The Python
# policy's build script does it (the same pinned componentize-py), on this directory's app.py.
set -eu
cd "$(dirname "$0")"
OUT="$(realpath -m "${OUT:-python-circuit-breaker.wasm}")"
APP="$(pwd)/app.py" OUT="$OUT" exec sh ../python-policy/build.sh
