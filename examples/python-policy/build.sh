#!/usr/bin/env sh
# Build the Python policy into a component: `OUT=policy.wasm sh build.sh`. Other Python
# examples build their own app.py with it: `APP=/path/to/app.py`.
# componentize-py comes from PyPI, pinned, into a virtualenv under target/tools.
set -eu
cd "$(dirname "$0")"
OUT="${OUT:-python-policy.wasm}"
APP="${APP:-app.py}"
TOOLS="${RUNRETRY_TOOLS_DIR:-$(pwd)/../../target/tools}"
VENV="$TOOLS/componentize-py-0.25.1"
if [ ! -x "$VENV/bin/componentize-py" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet componentize-py==0.25.1
fi
# Build from a copy: importing app.py writes __pycache__, which must not land in the source tree.
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
cp "$APP" "$SRC/app.py"
# --stub-wasi: the policy needs no WASI at all, so the component imports nothing.
"$VENV/bin/componentize-py" -d ../../wit -w retry-policy componentize -p "$SRC" app -o "$OUT" --stub-wasi
