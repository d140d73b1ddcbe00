#!/usr/bin/env bash
# Builds the native addon a second time, against the libtorch 2.x of the peer
# venv's pip torch (scripts/setup-peers.sh), into native/build-torch2/, beside
# the default build (native/build/, Debian's libtorch 1.13). Select it at run
# time with VLM_NATIVE_BUILD=native/build-torch2 (read by src/torch/native.ts).
# Incremental, like the default build. Used by .ci/run and `npm run test:torch2`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-peers.sh
VENV="${VLM_PEERS_VENV:-.venv-peers}"
export VLM_NATIVE_BUILD="${VLM_NATIVE_BUILD:-native/build-torch2}"
LIBTORCH_USE_PYTORCH=1 PYTHON="$VENV/bin/python" node native/build.mjs
