#!/usr/bin/env bash
# Measure the performance budget (bench/README.md) in the same environment as the tests (found or
# provisioned by scripts/hostenv.py). Prints a table and writes bench/results.json.
# Extra arguments go to bench/run.py, e.g. `bash scripts/bench.sh --quick` or `--cases train,sampling`,
# `--device cuda` (model cases on the GPU). `--gpu` runs bench/gpu.py instead (SD1.5-sized UNet at 512 px,
# fp32/fp16, batch 1/4: under eight minutes on one GPU); `--gpu --tiny` is its CPU smoke mode.
# `--prepare-gpu` copies the host's source into .host/ (git-ignored), so that `--gpu` also runs on a
# machine with python3 + CUDA torch and no registry and no venv: there it uses .host/ and python3 as
# they are, and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRIED="${HN_CARRIED_HOST:-$PWD/.host}"
if [[ "${1:-}" == "--gpu" && -z "${COMFYUI_PATH:-}" && -f "$CARRIED/ComfyUI/main.py" ]]; then
  shift
  export COMFYUI_PATH="$CARRIED/ComfyUI" HN_HOST_KIND=carried
  export PYTHONPATH="$CARRIED/site${PYTHONPATH:+:$PYTHONPATH}"
  PY="${HN_PYTHON:-python3}"
  "$PY" bench/carry_host.py --check --dest "$CARRIED" >&2 || echo "[bench.sh] modules are missing; the run may fail" >&2
  exec "$PY" bench/gpu.py "$@"
fi
eval "$(python3 scripts/hostenv.py --print-env)"
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
case "${1:-}" in
  --gpu) shift; exec "$HN_PYTHON" bench/gpu.py "$@" ;;
  --prepare-gpu) shift; exec "$HN_PYTHON" bench/carry_host.py "$@" ;;
esac
exec "$HN_PYTHON" bench/run.py "$@"
