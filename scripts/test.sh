#!/usr/bin/env bash
# Run the whole test suite inside a real ComfyUI host (found or provisioned by scripts/hostenv.py).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k apply -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
# The browser tests drive headless Chromium (Debian's `chromium`); without it they skip.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
    >/dev/null 2>&1 || echo "[test.sh] could not install chromium: the browser tests will skip" >&2
fi
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
exec "$HN_PYTHON" -m pytest tests "$@"
