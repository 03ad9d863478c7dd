#!/usr/bin/env bash
# Run the whole test suite inside a real ComfyUI host (found or provisioned by scripts/hostenv.py).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k apply -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
exec "$HN_PYTHON" -m pytest tests "$@"
