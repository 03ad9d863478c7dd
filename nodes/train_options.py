"""The Train node's rarely changed inputs, as two chainable options nodes.

TrainHypernetwork keeps the inputs most runs change; optimizer, scheduler, curriculum, loss,
rollback and preview settings live on `HypernetworkTrainingOptions` and
`HypernetworkPreviewOptions`, which pass one dict through a single `HN_TRAIN_OPTIONS` socket.
Each options node takes an optional incoming options dict and adds its own values, so they
chain in any order. Defaults are the Train node's former defaults, so a Train node without
options trains exactly as before. One table per node (name, type, default, tooltip, extra
widget settings) is the single source for the node inputs, the defaults and the legacy inputs.
"""
from __future__ import annotations

from typing import Any

from ..hypernet.train.config import (CLIP_GRAD_MODES, LOSS_TYPES, PREVIEW_SEED_MODES, SCHEDULERS,
                                     TRAINING_DTYPES)
from . import bridge
from .sockets import CATEGORY_TRAINING, HN_TRAIN_OPTIONS

# (name, type or list of choices or a function returning them, default, tooltip, widget extras)
OptionRow = tuple[str, Any, Any, str, dict]

TRAINING_OPTIONS: list[OptionRow] = [
    ("clip_grad_mode", list(CLIP_GRAD_MODES), "none", "Gradient clipping (after unscaling).", {}),
    ("clip_grad_value", "STRING", "0.1", "Clip value; schedule syntax allowed.", {}),
    ("adamw_weight_decay", "FLOAT", 0.01, "AdamW weight decay (torch's default, what A1111 used).",
     {"min": 0.0, "max": 0.99, "step": 0.001}),
    ("adamw_beta1", "FLOAT", 0.9, "AdamW beta1.", {"min": 0.0, "max": 0.9999, "step": 0.001}),
    ("adamw_beta2", "FLOAT", 0.999, "AdamW beta2.", {"min": 0.0, "max": 0.99999, "step": 0.0001}),
    ("adamw_eps", "FLOAT", 1e-8, "AdamW epsilon.", {"min": 1e-12, "max": 1e-2, "step": 1e-9}),
    ("training_dtype", list(TRAINING_DTYPES), "fp32",
     "Autocast dtype for the model forward; the hypernetwork itself always stays fp32.", {}),
    ("gradient_checkpointing", "BOOLEAN", False, "Recompute transformer blocks in backward: less memory.", {}),
    ("clip_skip", "INT", 1, "1 = last CLIP layer (A1111 default).", {"min": 1, "max": 12}),
    ("loss_type", list(LOSS_TYPES), "mse", "mse (A1111), l1 or huber.", {}),
    ("huber_delta", "FLOAT", 0.1, "huber loss: where it turns from quadratic to linear.",
     {"min": 1e-4, "max": 10.0, "step": 0.01}),
    ("scheduler", list(SCHEDULERS), "a1111",
     "a1111: the schedule string; cosine_restarts: MonkeyPatch's cosine annealing with warm restarts "
     "from its first rate.", {}),
    ("cosine_cycle_steps", "INT", 64, "cosine_restarts: steps in the first cycle.", {"min": 1, "max": 1_000_000}),
    ("cosine_cycle_mult", "FLOAT", 1.0, "cosine_restarts: each cycle is this much longer than the last.",
     {"min": 1.0, "max": 10.0, "step": 0.1}),
    ("cosine_warmup_steps", "INT", 5, "cosine_restarts: linear warm-up steps at the start of each cycle.",
     {"min": 0, "max": 100_000}),
    ("cosine_min_lr", "FLOAT", 6e-7, "cosine_restarts: the lowest learning rate of a cycle.",
     {"min": 1e-12, "max": 1.0, "step": 1e-7}),
    ("cosine_gamma", "FLOAT", 1.0, "cosine_restarts: the peak rate is multiplied by this each cycle.",
     {"min": 0.01, "max": 1.0, "step": 0.01}),
    ("save_at_cycle_end", "BOOLEAN", False, "cosine_restarts: also save and preview at the end of every cycle.", {}),
    ("timestep_curriculum", "BOOLEAN", False,
     "Sample timesteps up to a maximum that rises through each cycle (the whole run for the a1111 scheduler).", {}),
    ("rollback", "BOOLEAN", True,
     "On divergence or repeated NaN, go back to the last checkpoint with a lower learning rate.", {}),
    ("rollback_lr_factor", "FLOAT", 0.1, "Learning-rate multiplier applied at each rollback.",
     {"min": 0.001, "max": 0.99, "step": 0.01}),
    ("max_rollbacks", "INT", 3, "Stop after this many rollbacks.", {"min": 0, "max": 100}),
]

PREVIEW_OPTIONS: list[OptionRow] = [
    ("preview_every", "INT", 0, "Render a preview every N steps (0 = off).", {"min": 0, "max": 1_000_000}),
    ("preview_prompt", "STRING", "",
     "Preview prompt (empty = the training template filled for the first image, as A1111 does).",
     {"multiline": True}),
    ("preview_negative", "STRING", "", "Preview negative prompt.", {"multiline": True}),
    ("preview_seed", "INT", 0, "Preview seed.", {"min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
    ("preview_seed_mode", list(PREVIEW_SEED_MODES), "fixed",
     "fixed: every preview uses preview_seed, so previews compare across steps; random: a new seed per "
     "preview (A1111's -1).", {}),
    ("preview_steps", "INT", 20, "Preview sampling steps.", {"min": 1, "max": 200}),
    ("preview_cfg", "FLOAT", 7.0, "Preview CFG.", {"min": 0.0, "max": 100.0, "step": 0.1}),
    ("preview_sampler", bridge.sampler_names, "euler", "Preview sampler.", {}),
]

ALL_OPTIONS: list[OptionRow] = TRAINING_OPTIONS + PREVIEW_OPTIONS
OPTION_NAMES: frozenset[str] = frozenset(row[0] for row in ALL_OPTIONS)


def option_defaults() -> dict[str, Any]:
    """Every option at its default: what a Train node without an options node trains with."""
    return {name: default for name, _, default, _, _ in ALL_OPTIONS}


def input_spec(row: OptionRow) -> tuple:
    """The ComfyUI input declaration of one table row."""
    name, kind, default, tooltip, extras = row
    if callable(kind):
        kind = kind()
    return (kind, {"default": default, "tooltip": tooltip, **extras})


def merge_options(incoming: dict | None, own: dict[str, Any], rows: list[OptionRow]) -> dict[str, Any]:
    """The incoming options with this node's values added (its own win)."""
    if incoming is not None and not isinstance(incoming, dict):
        raise ValueError(f"options: expected the output of an options node, got {type(incoming).__name__}")
    merged = dict(incoming or {})
    merged.update({name: own[name] for name, *_ in rows if name in own})
    return merged


def _options_node(rows: list[OptionRow], description: str) -> type:
    class OptionsNode:
        DESCRIPTION = description
        CATEGORY = CATEGORY_TRAINING
        RETURN_TYPES = (HN_TRAIN_OPTIONS,)
        RETURN_NAMES = ("options",)
        OUTPUT_TOOLTIPS = ("Connect to Train Hypernetwork's options (or to another options node).",)
        FUNCTION = "options"

        @classmethod
        def INPUT_TYPES(cls):
            required = {row[0]: input_spec(row) for row in rows}
            optional = {"options": (HN_TRAIN_OPTIONS, {
                "tooltip": "Options from another options node; this node adds its own values."})}
            return {"required": required, "optional": optional}

        def options(self, options=None, **values):
            return (merge_options(options, values, rows),)

    return OptionsNode


class HypernetworkTrainingOptions(_options_node(
        TRAINING_OPTIONS,
        "Rarely changed training settings of Train Hypernetwork: gradient clipping, AdamW, precision, "
        "loss, cosine scheduler, timestep curriculum and rollback. Without it the defaults apply.")):
    pass


class HypernetworkPreviewOptions(_options_node(
        PREVIEW_OPTIONS,
        "Preview images while training: how often, prompt, seed and sampler. Without it no previews "
        "are rendered.")):
    pass
