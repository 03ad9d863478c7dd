"""Bench-only ComfyUI custom node: the bench UNet (bench/cases_model.py) as a loader node, so that a
bench through the real server trains the very model the in-process floor is measured on.

Linked into the bench server's custom_nodes by bench/cases_node.py; never part of the pack.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.cases_model import bench_unet_config  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "hn_bench_server_tiny_models", REPO_ROOT / "tests" / "support" / "hn_test_nodes" / "tiny_models.py")
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


class BenchModelLoader:
    """MODEL, CLIP and VAE exactly as bench/cases_model.BenchSetup builds them (fp32, CPU)."""

    DESCRIPTION = "Bench only: the bench's SD1-shaped UNet built in code, a tiny CLIP and VAE."
    CATEGORY = "hn_bench"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_channels": ("INT", {"default": 64, "min": 8, "max": 320}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}

    def load(self, model_channels, seed):
        import comfy.model_management
        import comfy.model_patcher

        with torch.inference_mode():
            config = tiny.MODEL_CONFIGS["sd1"](bench_unet_config(model_channels))
            config.set_inference_dtype(torch.float32, None)
            model = config.get_model({}, "", device=torch.device("cpu"))
            tiny.init_module(model, seed)
            model.eval()
            patcher = comfy.model_patcher.ModelPatcher(
                model, load_device=comfy.model_management.get_torch_device(),
                offload_device=comfy.model_management.unet_offload_device())
            return patcher, tiny.build_clip("sd1", seed), tiny.build_vae(seed)


NODE_CLASS_MAPPINGS = {"HNBenchModelLoader": BenchModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"HNBenchModelLoader": "HNBenchModelLoader"}
