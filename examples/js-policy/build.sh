#!/usr/bin/env sh
# Build the JavaScript policy into a component: `OUT=policy.wasm sh build.sh`.
# componentize-js comes from npm, pinned, into target/tools.
set -eu
cd "$(dirname "$0")"
OUT="${OUT:-js-policy.wasm}"
TOOLS="${RUNRETRY_TOOLS_DIR:-$(pwd)/../../target/tools}"
PREFIX="$TOOLS/componentize-js-0.23.0"
if [ ! -x "$PREFIX/node_modules/.bin/componentize-js" ]; then
    mkdir -p "$PREFIX"
    # The CLI imports preview2-shim but declares it only as a dev dependency: install it too.
    npm install --prefix "$PREFIX" --silent --no-audit --no-fund \
        @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0
fi
# Disable every WASI feature: the component then imports nothing from the host.
"$PREFIX/node_modules/.bin/componentize-js" policy.js --wit ../../wit --world-name retry-policy \
    -d stdio random clocks http fetch-event -o "$OUT"
