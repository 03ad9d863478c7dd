#!/usr/bin/env bash
# Measure the performance budget (bench/README.md) in the same environment as the tests (found or
# provisioned by scripts/hostenv.py). Prints a table and writes bench/results.json.
# Extra arguments go to bench/run.py, e.g. `bash scripts/bench.sh --quick` or `--cases train,sampling`,
# `--device cuda` (model cases on the GPU). `--gpu` runs bench/gpu.py instead (SD1.5-sized UNet at 512 px,
# fp32/fp16, batch 1/4: under ten minutes on one GPU); `--gpu --tiny` is its CPU smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
if [[ "${1:-}" == "--gpu" ]]; then
  shift
  exec "$HN_PYTHON" bench/gpu.py "$@"
fi
exec "$HN_PYTHON" bench/run.py "$@"
