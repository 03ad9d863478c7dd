#!/usr/bin/env bash
# Measure the performance budget (bench/README.md) in the same environment as the tests (found or
# provisioned by scripts/hostenv.py). Prints a table and writes bench/results.json.
# Extra arguments go to bench/run.py, e.g. `bash scripts/bench.sh --quick` or `--cases train,sampling`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
exec "$HN_PYTHON" bench/run.py "$@"
