"""Test-wide setup: the pure core is importable as top-level `hypernet`; host fixtures load.

Never import the pack's `nodes` package as top-level `nodes` here: that name belongs to the
host's `nodes.py` once the in-process host is imported. Use `tests.support.pack_files` helpers.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

pytest_plugins = ["tests.support.fixtures"]

# Server and browser tests start a real ComfyUI (and Chromium): one that hangs must fail, not
# block the run forever. Needs pytest-timeout (requirements-dev.txt); without it, no limit.
SERVER_TEST_TIMEOUT_S = 1200
SERVER_TEST_FOLDERS = ("e2e", "host")


def pytest_collection_modifyitems(config, items) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in SERVER_TEST_FOLDERS and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SERVER_TEST_TIMEOUT_S))
