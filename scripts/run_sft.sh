#!/usr/bin/env bash
# Runs `vlm-grpo sft` with configs/sft.yaml; extra arguments are passed on,
# e.g. scripts/run_sft.sh --model DIR --data.path DATA
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f dist/src/cli/main.js ]] || bash scripts/setup.sh
exec node dist/src/cli/main.js sft --config configs/sft.yaml "$@"
