"""ApplyHypernetwork: patch a MODEL with a hypernetwork file or a connected HYPERNETWORK."""
from __future__ import annotations

from ..hypernet.network.composition import Composition
from ..hypernet.network.patch import HypernetworkPatch, require_match
from . import network_files
from .host import patches
from .sockets import CATEGORY_GENERATION, HYPERNETWORK


def apply_to_model(model, network, strength: float):
    """Clone `model` and add `network` (or a `.hns` composition) after any hypernetworks already on
    it (they stack in order)."""
    widths = patches.all_attention_widths(model)
    if isinstance(network, Composition):
        network.require_fit(widths, "the connected model")
    else:
        require_match(network, widths, "the connected model")
    return patches.with_attention_patch(model, HypernetworkPatch([(network, strength)]))


def check_file_choice(name) -> bool | str:
    """True for a listed file (or 'none'); else a message that says to train first, instead of the
    host's bare "value not in list" (a shared workflow names a file the user has not trained yet)."""
    if not isinstance(name, str):  # linked from another node: nothing to check before it runs
        return True
    files = network_files.choices(with_none=False, compositions=True)
    if name == "none" or name in files:
        return True
    found = f"pick one of the {len(files)} files in the list" if files else "the folder has no file yet"
    return (f"hypernetwork file {name!r} is not in models/hypernetworks ({found}). Train it first: run the "
            f"'Train a hypernetwork' template with Create Hypernetwork's name set to "
            f"{name.rsplit('/', 1)[-1].rsplit('.', 1)[0]!r}, then choose the file here")


class ApplyHypernetwork:
    DESCRIPTION = ("Applies a hypernetwork to a model (A1111 math, deterministic: dropout is off at inference). "
                   "Chain several to stack them; the incoming model is never changed.")
    CATEGORY = CATEGORY_GENERATION
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with the hypernetwork applied.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to patch (it is cloned, never modified)."}),
                "hypernetwork_name": (network_files.choices(compositions=True), {
                    "tooltip": "A .pt/.safetensors file, or a MonkeyPatch .hns composition of them, from the "
                               "hypernetworks folders; 'none' uses the connected hypernetwork."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01,
                                       "tooltip": "Multiplier of the hypernetwork's residual (0 = no effect; for a "
                                                  ".hns, of the whole composition's change)."}),
            },
            "optional": {
                "hypernetwork": (HYPERNETWORK, {"tooltip": "A network from Create/Train Hypernetwork; overrides "
                                                           "the file."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, hypernetwork_name=None):
        return check_file_choice(hypernetwork_name)

    def apply(self, model, hypernetwork_name, strength, hypernetwork=None):
        if hypernetwork is None:
            if hypernetwork_name == "none":
                raise ValueError("hypernetwork_name: 'none' needs a connected hypernetwork input; "
                                 "pick a file or connect Create/Train Hypernetwork")
            hypernetwork = network_files.load_by_name(hypernetwork_name)
        return (apply_to_model(model, hypernetwork, strength),)
