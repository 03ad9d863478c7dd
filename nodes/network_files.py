"""Loading hypernetwork files by their name in the model list, with a small cache.

Files are loaded once per (path, size, mtime): the XY grid and repeated Apply nodes reuse them.
Cached networks are shared, so consumers that change weights (training) must copy them first.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from ..hypernet.network.composition import Composition, bind
from ..hypernet.network.fileio import load_hypernetwork
from ..hypernet.network.hns import COMPOSITION_EXTENSION, CompositionError, member_names, read_composition, \
    resolve_member
from ..hypernet.network.health import network_warnings
from ..hypernet.network.module import Hypernetwork
from .host import paths

logger = logging.getLogger(__name__)

_CACHE_SIZE = 16
_cache: "OrderedDict[tuple, Hypernetwork]" = OrderedDict()
_lock = threading.Lock()


def resolve_file(name: str) -> Path:
    return paths.resolve_in_folders(name, paths.HYPERNETWORK_FOLDER)


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


def is_composition(name: str) -> bool:
    return str(name).lower().endswith(COMPOSITION_EXTENSION)


def load_composition(name: str, path: Path) -> Composition:
    """Parse the `.hns` file `name` and load its members from the hypernetwork folders.

    A member that resolves to a `.hns` is refused (as in MonkeyPatch): a cycle when it leads back
    to this file, a nested-composition error otherwise.
    """
    spec = read_composition(path, name)
    available = paths.hypernetwork_files(paths.HYPERNETWORK_EXTENSIONS + (COMPOSITION_EXTENSION,))

    def load_member(member: str) -> tuple[str, Hypernetwork]:
        file = resolve_member(member, available, resolve_file, name)
        if is_composition(file):
            raise CompositionError(_composition_reference(name, member, file, available))
        try:
            return file, load_file(resolve_file(file))
        except (ValueError, OSError) as exc:
            raise CompositionError(f"{name}: member {member!r} ({file}) cannot be loaded: {exc}") from None

    return Composition(name, bind(spec, load_member))


def _composition_reference(name: str, member: str, file: str, available: list[str]) -> str:
    """The error for a member that is itself a `.hns`: a cycle if it leads back to `name`."""
    if file == name:
        return f"{name}: member {member!r} is {name} itself, a cycle; name .pt/.safetensors files only"
    try:
        for inner in member_names(read_composition(resolve_file(file), file)):
            if resolve_member(inner, available, resolve_file, file) == name:
                return (f"{name}: member {member!r} is {file}, which names {name} again: a cycle "
                        f"({name} -> {file} -> {name}); a .hns can only name .pt/.safetensors files")
    except (ValueError, OSError):
        pass
    return (f"{name}: member {member!r} is the composition {file}; a .hns cannot name another .hns. "
            f"Copy its group into {name} as a quoted string instead")


def load_by_name(name: str) -> Hypernetwork | Composition:
    """A network file, or a `.hns` composition of network files."""
    path = resolve_file(name)
    if is_composition(name):
        return load_composition(name, path)
    return load_file(path)


def choices(with_none: bool = True, compositions: bool = False) -> list[str]:
    """The names for a file combo: 'none' first (use the connected network), then every file
    (`.hns` compositions too where the consumer can apply them)."""
    extensions = paths.HYPERNETWORK_EXTENSIONS + ((COMPOSITION_EXTENSION,) if compositions else ())
    return (["none"] if with_none else []) + paths.hypernetwork_files(extensions)
