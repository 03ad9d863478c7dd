#!/usr/bin/env bash
# Run the test suite inside a real ComfyUI host (found or provisioned by scripts/hostenv.py).
# With no arguments: the whole `tests` folder (what CI runs). Arguments go to pytest; when they
# name test paths, only those run, e.g. `bash scripts/test.sh tests/unit -x` or
# `bash scripts/test.sh -k apply -x` (the whole folder, filtered).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(python3 scripts/hostenv.py --print-env)"
# The browser tests drive headless Chromium (Debian's `chromium`); without it they skip (fail under CI=true).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
    >/dev/null 2>&1 || echo "[test.sh] could not install chromium: the browser tests will skip" >&2
fi
# node runs the frontend's pure modules against the Python rules they copy (tests/cases/*.json).
if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs) \
    >/dev/null 2>&1 || echo "[test.sh] could not install nodejs: the JS-vs-Python case tests will skip" >&2
fi
export HN_PYTHON COMFYUI_PATH HN_HOST_KIND
names_path=0
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) if [ -e "${arg%%::*}" ]; then names_path=1; fi ;;
  esac
done
if [ "$names_path" = 1 ]; then
  exec "$HN_PYTHON" -m pytest "$@"
fi
exec "$HN_PYTHON" -m pytest tests "$@"
