#!/usr/bin/env bash
# Runs `vlm-grpo grpo` with configs/grpo.yaml; extra arguments are passed on,
# e.g. scripts/run_grpo.sh --model DIR --data.path DATA
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f dist/src/cli/main.js ]] || bash scripts/setup.sh
exec node dist/src/cli/main.js grpo --config configs/grpo.yaml "$@"
