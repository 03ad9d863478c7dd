"""Test-wide setup: the pure core is importable as top-level `hypernet`; host fixtures load.

Never import the pack's `nodes` package as top-level `nodes` here: that name belongs to the
host's `nodes.py` once the in-process host is imported. Use `tests.support.pack_files` helpers.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

pytest_plugins = ["tests.support.fixtures"]
