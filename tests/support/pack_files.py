"""Read pack files that need no ComfyUI (the node catalog) without importing `nodes` top-level."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_by_path(name: str, relative: str):
    """The repo file `relative` (e.g. "scripts/demo.py") as a module under the private `name`."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_catalog():
    """The `nodes/catalog.py` module, loaded by path under a private name."""
    return load_by_path("hn_catalog", "nodes/catalog.py")


CATALOG = load_catalog().CATALOG
NODE_IDS = [row[0] for row in CATALOG]
