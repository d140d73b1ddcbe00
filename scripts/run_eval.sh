#!/usr/bin/env bash
# Runs `vlm-grpo eval` with configs/eval.yaml; extra arguments are passed on,
# e.g. scripts/run_eval.sh --model DIR --data.path DATA
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f dist/src/cli/main.js ]] || bash scripts/setup.sh
exec node dist/src/cli/main.js eval --config configs/eval.yaml "$@"
