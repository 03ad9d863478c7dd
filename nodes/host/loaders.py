"""Headless runs (scripts/train_run.py): the loader node's model file, custom nodes, running a loader."""
from __future__ import annotations

from pathlib import Path

from ...hypernet.graph.model_source import LOADER_FILE_INPUTS as _LOADER_FILE_INPUTS
from ...hypernet.util.names import shown
from .paths import resolve_in_folders


def loader_model_file(inputs: dict) -> tuple[str, Path] | None:
    """(input name, resolved path) of the model file a loader node's inputs name (ckpt_name,
    unet_name), or None when they name none. Names that escape the model folders are refused."""
    for file_input, kinds in _LOADER_FILE_INPUTS.items():
        name = inputs.get(file_input)
        if not isinstance(name, str):
            continue
        for kind in kinds:
            try:
                return file_input, resolve_in_folders(name, kind)
            except (FileNotFoundError, KeyError):
                continue
        raise FileNotFoundError(f"{file_input} {shown(name)} was not found in the "
                                f"{' or '.join(kinds)} folders; put the file there")
    return None


def load_custom_nodes(folder: Path) -> dict:
    """NODE_CLASS_MAPPINGS of the custom-node package in `folder` (imported as the host would)."""
    import importlib.util
    import sys

    init = Path(folder) / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"--custom-nodes: {folder} is not a custom-node folder (no __init__.py)")
    name = f"hn_headless_{Path(folder).resolve().name}"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return dict(getattr(module, "NODE_CLASS_MAPPINGS", {}))


def run_loader_node(class_type: str, inputs: dict, outputs: dict[str, int], extra_nodes: dict) -> tuple:
    """(MODEL, CLIP, VAE) from one loader node run as the server would (inference mode), found in
    the host's nodes or `extra_nodes`. Only nodes that output MODEL, CLIP and VAE and write nothing."""
    import torch
    import nodes as host_nodes  # the host's nodes.py: its loaders (CheckpointLoaderSimple, ...)

    cls = {**host_nodes.NODE_CLASS_MAPPINGS, **extra_nodes}.get(class_type)
    if cls is None:
        raise ValueError(f"base_model.class_type: {shown(class_type)} is not a loaded node; give its custom-node "
                         "folder with --custom-nodes")
    returns = tuple(getattr(cls, "RETURN_TYPES", ()))
    wanted = {"model": "MODEL", "clip": "CLIP", "vae": "VAE"}
    if getattr(cls, "OUTPUT_NODE", False) or any(
            not 0 <= outputs[k] < len(returns) or returns[outputs[k]] != kind for k, kind in wanted.items()):
        raise ValueError(f"base_model: {shown(class_type)} is not a loader of MODEL, CLIP and VAE at "
                         f"outputs {outputs}")
    with torch.inference_mode():
        result = getattr(cls(), cls.FUNCTION)(**inputs)
    result = result.get("result", result) if isinstance(result, dict) else result
    return tuple(result[outputs[k]] for k in ("model", "clip", "vae"))
