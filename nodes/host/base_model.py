"""The base checkpoint a MODEL input was loaded from (A1111's sd_checkpoint / sd_checkpoint_name).

The graph walk itself is pure (`hypernet.graph.model_source`); here the file is looked up in the
host's model folders and hashed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import folder_paths

from ...hypernet.util.names import shown
from .feedback import interrupted, raise_if_interrupted
from .paths import default_hypernetwork_folder


HASH_CACHE_NAME = ".checkpoint_hashes.json"


def _resolve_model_file(folder_kinds: tuple[str, ...], name: str) -> Path | None:
    for kind in folder_kinds:
        try:
            path = folder_paths.get_full_path(kind, name)
        except KeyError:  # folder kind unknown to this host version
            continue
        if path:
            return Path(path)
    return None


def base_model_of_input(prompt: Any, node_id: Any, input_name: str = "model") -> Any:
    """A1111's sd_checkpoint / sd_checkpoint_name of the file the MODEL input was loaded from.

    Hashes are cached in the hypernetworks folder (HASH_CACHE_NAME), so a big file is hashed once.
    """
    from ...hypernet.graph.model_source import trace_model_loader  # the pure graph walk
    from ...hypernet.network.base_model_hash import BaseModel, HashCache, base_model_of

    traced = trace_model_loader(prompt, node_id, input_name)
    if isinstance(traced, str):
        return BaseModel(why=traced)
    class_type, _, name = traced
    path = _resolve_model_file(traced.folder_kinds, name)
    if path is None or not path.is_file():
        return BaseModel(why=f"{class_type}'s file {shown(name)} was not found in the model folders")
    cache = HashCache(default_hypernetwork_folder() / HASH_CACHE_NAME)
    try:
        return base_model_of(path, name, cache, should_stop=interrupted)
    except InterruptedError:
        raise_if_interrupted()
        raise
