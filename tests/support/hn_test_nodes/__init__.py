"""Test-only ComfyUI custom nodes: tiny models built in code, and small probes for assertions.

Linked into the test server's `custom_nodes/` by the harness; never part of the pack's mappings.
"""
from __future__ import annotations

import json
import os



import folder_paths

from . import tiny_models

tiny_models.register_tiny_configs()


class TinyCheckpointLoader:
    """Builds a tiny SD-architecture MODEL, CLIP and VAE deterministically from a seed."""

    DESCRIPTION = "Test only: a tiny random SD1/SD2-v/SDXL-shaped model, CLIP and VAE built in code."
    CATEGORY = "hn_test"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "kind": (list(tiny_models.KINDS), {"tooltip": "architecture shape"}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "weights seed"}),
        }}

    def load(self, kind, seed):
        return tiny_models.build_tiny(kind, seed)


class TinyLatentStats:
    """Writes sha256/mean/std of a LATENT to a JSON file in the output folder (for assertions)."""

    DESCRIPTION = "Test only: dumps a latent's values to output/<filename>.json."
    CATEGORY = "hn_test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "dump"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "filename": ("STRING", {"default": "latent"})}}

    def dump(self, samples, filename):
        latent = samples["samples"].float().cpu()
        path = os.path.join(folder_paths.get_output_directory(), f"{filename}.json")
        with open(path, "w") as fh:
            json.dump({"shape": list(latent.shape), "values": latent.flatten().tolist()}, fh)
        return {"ui": {"latent_file": [path]}}


class TinyModelProbe:
    """Reports which attention patches a MODEL carries (to check that inputs were not mutated)."""

    DESCRIPTION = "Test only: lists the transformer patches of a MODEL."
    CATEGORY = "hn_test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "probe"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def probe(self, model):
        patches = model.model_options.get("transformer_options", {}).get("patches", {})
        summary = {name: len(items) for name, items in patches.items()}
        return {"ui": {"patches": [summary]}}


class RawTrainOptions:
    """Any dict on the Train node's options socket, as a third-party node could send it."""

    DESCRIPTION = "Test only: a JSON object sent unchecked as HN_TRAIN_OPTIONS."
    CATEGORY = "hn_test"
    RETURN_TYPES = ("HN_TRAIN_OPTIONS",)
    FUNCTION = "options"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"options_json": ("STRING", {"default": "{}"})}}

    def options(self, options_json):
        return (json.loads(options_json),)


NODE_CLASS_MAPPINGS = {
    "HNTestTinyCheckpointLoader": TinyCheckpointLoader,
    "HNTestLatentStats": TinyLatentStats,
    "HNTestModelProbe": TinyModelProbe,
    "HNTestRawTrainOptions": RawTrainOptions,
}
NODE_DISPLAY_NAME_MAPPINGS = {key: key for key in NODE_CLASS_MAPPINGS}
