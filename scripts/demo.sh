#!/usr/bin/env bash
# The main job end to end on a fresh machine: set up the host, start it with the pack, run the demo.
# Options go to scripts/demo.py (see `bash scripts/demo.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
exec "$HN_PYTHON" scripts/demo.py "$@"
