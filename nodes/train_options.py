"""The Train node's rarely changed inputs, as two chainable options nodes.

TrainHypernetwork keeps the inputs most runs change; optimizer, scheduler, curriculum, loss,
rollback and preview settings live on `HypernetworkTrainingOptions` and
`HypernetworkPreviewOptions`, which pass one dict through a single `HN_TRAIN_OPTIONS` socket.
Each options node takes an optional incoming options dict and adds its own values, so they
chain in any order. Their inputs are generated from the declaration in
`hypernet/train/settings.py` (the settings whose `node` is the options node).
"""
from __future__ import annotations

from typing import Any

from ..hypernet.train import settings
from ..hypernet.train.settings import OPTION_NAMES, Setting  # noqa: F401 (re-exported)
from .host import sampling
from .sockets import CATEGORY_TRAINING, HN_TRAIN_OPTIONS

HOST_CHOICES: settings.HostChoices = {settings.HOST_SAMPLERS: sampling.sampler_names}


def node_inputs(node: str) -> dict[str, tuple]:
    """The ComfyUI input declarations of the settings a node shows, in widget order."""
    return {s.name: settings.input_spec(s, HOST_CHOICES) for s in settings.settings_of(node)}


def option_defaults() -> dict[str, Any]:
    """Every option at its default: what a Train node without an options node trains with."""
    return settings.defaults(OPTION_NAMES)


def merge_options(incoming: dict | None, own: dict[str, Any], node: str) -> dict[str, Any]:
    """The incoming options with this node's values added (its own win); all validated."""
    if incoming is not None and not isinstance(incoming, dict):
        raise ValueError(f"options: expected the output of an options node, got {type(incoming).__name__}")
    merged = settings.check_options(incoming or {}, HOST_CHOICES)
    names = [s.name for s in settings.settings_of(node)]
    merged.update(settings.check_options({name: own[name] for name in names if name in own}, HOST_CHOICES, node))
    return merged


def _options_node(node: str, description: str) -> type:
    class OptionsNode:
        DESCRIPTION = description
        CATEGORY = CATEGORY_TRAINING
        RETURN_TYPES = (HN_TRAIN_OPTIONS,)
        RETURN_NAMES = ("options",)
        OUTPUT_TOOLTIPS = ("Connect to Train Hypernetwork's options (or to another options node).",)
        FUNCTION = "options"

        @classmethod
        def INPUT_TYPES(cls):
            optional = {"options": (HN_TRAIN_OPTIONS, {
                "tooltip": "Options from another options node; this node adds its own values."})}
            return {"required": node_inputs(node), "optional": optional}

        def options(self, options=None, **values):
            return (merge_options(options, values, node),)

    return OptionsNode


class HypernetworkTrainingOptions(_options_node(
        settings.TRAINING_OPTIONS,
        "Rarely changed training settings of Train Hypernetwork: gradient clipping, AdamW, precision, "
        "loss, cosine scheduler, timestep curriculum and rollback. Without it the defaults apply.")):
    pass


class HypernetworkPreviewOptions(_options_node(
        settings.PREVIEW_OPTIONS,
        "Preview images while training: how often, prompt, seed and sampler. Without it no previews "
        "are rendered.")):
    pass
