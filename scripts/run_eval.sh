#!/usr/bin/env bash
# Runs `vlm-grpo eval` with configs/eval.yaml; extra arguments are passed on,
# e.g. scripts/run_eval.sh --model DIR --data.path DATA
# It runs in the directory you call it from, so relative paths (in your
# arguments and in the config's values) mean what they mean there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$ROOT/dist/src/cli/main.js" ]] || bash "$ROOT/scripts/setup.sh"
exec node "$ROOT/dist/src/cli/main.js" eval --config "$ROOT/configs/eval.yaml" "$@"
