"""Loading hypernetwork files by their name in the model list, with a small cache.

Files are loaded once per (path, size, mtime): the XY grid and repeated Apply nodes reuse them.
Cached networks are shared, so consumers that change weights (training) must copy them first.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from ..hypernet.network.fileio import load_hypernetwork
from ..hypernet.network.health import network_warnings
from ..hypernet.network.module import Hypernetwork
from . import bridge

logger = logging.getLogger(__name__)

_CACHE_SIZE = 16
_cache: "OrderedDict[tuple, Hypernetwork]" = OrderedDict()
_lock = threading.Lock()


def resolve_file(name: str) -> Path:
    return bridge.resolve_in_folders(name, bridge.HYPERNETWORK_FOLDER)


def load_file(path: Path) -> Hypernetwork:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    network = load_hypernetwork(path)
    for warning in network_warnings(network):  # once per load: the result is cached
        logger.warning("hypernetwork %s: %s", path, warning)
    with _lock:
        _cache[key] = network
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return network


def load_by_name(name: str) -> Hypernetwork:
    return load_file(resolve_file(name))


def choices(with_none: bool = True) -> list[str]:
    """The names for a file combo: 'none' first (use the connected network), then every file."""
    return (["none"] if with_none else []) + bridge.hypernetwork_files()
