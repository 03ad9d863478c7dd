"""CreateHypernetwork: a new A1111-layout hypernetwork, optionally saved to the hypernetworks folder."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from ..hypernet.network.activations import creatable_activation_names
from ..hypernet.network.hypernetwork_config import WEIGHT_INITIALIZATIONS, HypernetworkConfig, parse_float_list, parse_int_list
from ..hypernet.network.fileio import save_hypernetwork
from ..hypernet.network.module import Hypernetwork
from ..hypernet.util.names import safe_name
from .host import patches, paths
from .sockets import CATEGORY_TRAINING, HYPERNETWORK

logger = logging.getLogger(__name__)

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._\- ]")


def sanitize_name(name: str) -> str:
    """A1111's rule: keep letters, digits, '.', '_', '-' and spaces; refuse an empty result."""
    cleaned = _UNSAFE_NAME_CHARS.sub("", name or "").strip().strip(".")
    if not cleaned:
        raise ValueError(f"name: {name!r} has no usable characters; use letters, digits, '.', '_', '-' or spaces")
    return safe_name(cleaned, "name")


def parse_sizes(text: str, model) -> list[int]:
    """The attention widths to create: a comma list, or "auto" to read them from a connected MODEL."""
    if text.strip().lower() == "auto":
        if model is None:
            raise ValueError("sizes: 'auto' reads the widths from a MODEL; connect the optional model input "
                             "or type widths such as '768, 320, 640, 1280'")
        return list(patches.all_attention_widths(model))
    return parse_int_list(text, "sizes")


def save_new_file(network: Hypernetwork, overwrite: bool) -> Path:
    target = paths.default_hypernetwork_folder() / f"{safe_name(network.name, 'name')}.pt"
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; turn on 'overwrite' or choose another name")
    return save_hypernetwork(network, target)


class CreateHypernetwork:
    DESCRIPTION = ("Creates a new hypernetwork with A1111's layout and initialisation; optionally saves it as "
                   "models/hypernetworks/<name>.pt, readable by A1111 and stock ComfyUI.")
    CATEGORY = CATEGORY_TRAINING
    RETURN_TYPES = (HYPERNETWORK, "STRING")
    RETURN_NAMES = ("hypernetwork", "path")
    OUTPUT_TOOLTIPS = ("The new hypernetwork (connect to Train or Apply Hypernetwork).",
                       "The saved file's path, or empty when not saved.")
    FUNCTION = "create"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "name": ("STRING", {"default": "my_hypernetwork",
                                    "tooltip": "File and display name; letters, digits, '.', '_', '-', spaces."}),
                "layer_structure": ("STRING", {
                    "default": "1, 2, 1",
                    "tooltip": "The network's shape: the width of each layer as a multiple of the attention width; "
                               "starts and ends with 1. '1, 2, 1' (A1111's default) suits most styles; a bigger "
                               "structure ('1, 1.5, 1.5, 1') holds more but needs more images and steps."}),
                "activation_func": (creatable_activation_names(), {
                    "default": "linear",
                    "tooltip": "The non-linearity between layers. linear (none) is A1111's default; its create "
                               "page recommends swish or linear. Stock ComfyUI's loader reads only the first nine "
                               "in this list, so pick one of those to share the file with it."}),
                "weight_initialization": (list(WEIGHT_INITIALIZATIONS), {
                    "default": "Normal",
                    "tooltip": "How the new weights start. Normal (default): tiny random weights, so the new "
                               "network starts out changing nothing. Kaiming for relu-like activations, Xavier "
                               "for sigmoid/tanh-like ones (A1111's advice)."}),
                "add_layer_norm": ("BOOLEAN", {"default": False,
                                               "tooltip": "Normalise after every layer (LayerNorm). Off is A1111's "
                                                          "default; on can steady training of deep structures."}),
                "use_dropout": ("BOOLEAN", {"default": False,
                                            "tooltip": "Randomly switch off parts of the network while training (as "
                                                       "set by dropout_structure), which fights overfitting on "
                                                       "small datasets."}),
                "dropout_structure": ("STRING", {"default": "0, 0, 0",
                                                 "tooltip": "With use_dropout: the fraction switched off after each "
                                                            "layer, one value per layer, first and last 0, each in "
                                                            "[0, 1). A1111 recommends a small rising sequence such as "
                                                            "'0, 0.05, 0.15'."}),
                "activate_output": ("BOOLEAN", {"default": False,
                                                "tooltip": "Also apply the activation after the last layer. Leave "
                                                           "off: A1111 removed it because an activated output (relu) "
                                                           "can block learning."}),
                "last_layer_dropout": ("BOOLEAN", {"default": False,
                                                   "tooltip": "With use_dropout: must match dropout_structure (on "
                                                              "when its second-to-last value is not 0). A1111 keeps "
                                                              "this flag for files made before dropout_structure "
                                                              "existed; set the structure and match it."}),
                "sizes": ("STRING", {"default": "768, 320, 640, 1280",
                                     "tooltip": "Which attention layers get a module, by width: SD1.x uses 768 (the "
                                                "prompt) and 320, 640, 1280 (the image), SD2.x 1024 instead of 768. "
                                                "'auto' reads the widths from the connected model (needed for "
                                                "SDXL)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Initialisation seed: same settings and seed give the same weights."}),
                "save": ("BOOLEAN", {"default": True,
                                     "tooltip": "Write models/hypernetworks/<name>.pt right away."}),
                "overwrite": ("BOOLEAN", {"default": False, "tooltip": "Replace an existing file of that name."}),
            },
            "optional": {
                "model": ("MODEL", {"tooltip": "Only needed for sizes 'auto'."}),
                "optional_info": ("STRING", {"default": "", "multiline": True,
                                             "tooltip": "Free text stored in the file."}),
            },
        }

    def create(self, name, layer_structure, activation_func, weight_initialization, add_layer_norm, use_dropout,
               dropout_structure, activate_output, last_layer_dropout, sizes, seed, save, overwrite,
               model=None, optional_info=""):
        dropout = parse_float_list(dropout_structure, "dropout_structure") if use_dropout else None
        config = HypernetworkConfig(
            name=sanitize_name(name), layer_structure=parse_float_list(layer_structure, "layer_structure"),
            activation_func=activation_func, is_layer_norm=add_layer_norm,
            weight_initialization=weight_initialization, use_dropout=use_dropout, dropout_structure=dropout,
            activate_output=activate_output, last_layer_dropout=last_layer_dropout,
            sizes=parse_sizes(sizes, model), optional_info=optional_info or None, seed=seed)
        network = Hypernetwork.create(config)
        path = str(save_new_file(network, overwrite)) if save else ""
        return (network, path)
