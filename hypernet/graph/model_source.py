"""Where a MODEL input comes from: the loader node and file name, traced upstream in the prompt.

A prompt is what ComfyUI queues: `{node id: {"class_type": str, "inputs": {name: value}}}`, where a
value linked to another node's output is `[source node id, output index]`. The trace follows
`model` inputs through MODEL-passing nodes (LoRA loaders, Apply Hypernetwork, ...) to the first node
that names a model file. It reads the dict only; it never resolves or opens the file.
"""
from __future__ import annotations

from typing import Any, NamedTuple

# Loader inputs that name a model file, and the model folder kinds it is looked up in (first found).
LOADER_FILE_INPUTS: dict[str, tuple[str, ...]] = {
    "ckpt_name": ("checkpoints",),
    "unet_name": ("diffusion_models", "unet"),
}


class LoaderFile(NamedTuple):
    """The loader node a MODEL came from and the file it named."""

    loader: str  # the loader's class_type, e.g. "CheckpointLoaderSimple"
    file_input: str  # which input named the file ("ckpt_name", "unet_name")
    file_name: str  # the name as the loader got it, relative to a model folder

    @property
    def folder_kinds(self) -> tuple[str, ...]:
        """The model folder kinds to look the file up in, in order."""
        return LOADER_FILE_INPUTS[self.file_input]


def link_source(value: Any) -> str | None:
    """The source node id of a prompt link (`[node id, output index]`), else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[1], int):
        return str(value[0])
    return None


def _node_inputs(prompt: dict, node_id: str) -> dict | None:
    node = prompt.get(node_id)
    if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
        return None
    return node["inputs"]


def trace_model_loader(prompt: Any, node_id: Any, input_name: str = "model") -> LoaderFile | str:
    """Follow `input_name` of `node_id` upstream through MODEL-passing nodes to the loader node.

    Returns the `LoaderFile`, or a sentence saying why it cannot be known (no graph, a missing or
    unconnected node, a loop, or a MODEL made by a node that is neither a loader nor passes one on).
    """
    if not isinstance(prompt, dict) or node_id is None:
        return "the workflow graph is not available (the node ran outside a queued prompt)"
    current, name, seen = str(node_id), input_name, set()
    while True:
        inputs = _node_inputs(prompt, current)
        if inputs is None:
            return f"node {current} is not in the workflow graph"
        source = link_source(inputs.get(name))
        if source is None:
            return f"the {name} input of node {current} is not connected"
        if source in seen:
            return "the MODEL links form a loop"
        seen.add(source)
        upstream = _node_inputs(prompt, source)
        if upstream is None:
            return f"node {source} is not in the workflow graph"
        class_type = str(prompt[source].get("class_type", "?"))
        for file_input in LOADER_FILE_INPUTS:
            if isinstance(upstream.get(file_input), str):
                return LoaderFile(class_type, file_input, upstream[file_input])
        if link_source(upstream.get("model")) is None:
            return (f"the MODEL comes from node {source} ({class_type}), which is not a checkpoint loader "
                    "and has no model input to follow")
        current, name = source, "model"
