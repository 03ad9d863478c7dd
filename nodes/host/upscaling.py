"""Upscale models (Preprocess): run the host's UPSCALE_MODEL as its ImageUpscaleWithModel node does."""
from __future__ import annotations

from typing import Any

import comfy.model_management
import comfy.utils

from .feedback import raise_if_interrupted


def model_upscaler(upscale_model: Any, tile: int = 512, overlap: int = 32) -> Any:
    """`upscale(pil_image) -> pil_image` running the host's UPSCALE_MODEL the way its
    ImageUpscaleWithModel node does: tiled (halving the tile on out-of-memory), a progress bar of
    tiles, and Cancel checked before every tile. Works with the pinned host's chainner models and
    current ComfyUI's spandrel descriptors (both are callables with `.scale` and `.to`)."""
    import numpy as np
    import torch
    from PIL import Image

    if not callable(upscale_model) or not hasattr(upscale_model, "scale") or not hasattr(upscale_model, "to"):
        raise ValueError(f"upscale_model: expected an UPSCALE_MODEL (the output of Load Upscale Model), got "
                         f"{type(upscale_model).__name__}; connect a Load Upscale Model node, or disconnect it")
    management = comfy.model_management

    def run_tile(batch):
        raise_if_interrupted()
        return upscale_model(batch)

    def upscale(image):
        device = management.get_torch_device()
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]
        if hasattr(management, "module_size"):  # the host's own estimate (current ComfyUI)
            module = getattr(upscale_model, "model", upscale_model)
            working = (tile * tile * 3) * pixels.element_size() * max(float(upscale_model.scale), 1.0) * 384.0
            management.free_memory(management.module_size(module) + working + pixels.nelement() * 4, device)
        upscale_model.to(device)
        size = tile
        try:
            with torch.inference_mode():
                batch = pixels.movedim(-1, -3).to(device)
                while True:
                    try:
                        steps = comfy.utils.get_tiled_scale_steps(batch.shape[3], batch.shape[2], tile_x=size,
                                                                  tile_y=size, overlap=overlap)
                        bar = comfy.utils.ProgressBar(steps)
                        out = comfy.utils.tiled_scale(batch, run_tile, tile_x=size, tile_y=size, overlap=overlap,
                                                      upscale_amount=upscale_model.scale, pbar=bar)
                        break
                    except management.OOM_EXCEPTION:
                        size //= 2
                        if size < 64:
                            raise
        finally:
            upscale_model.to("cpu")
        array = torch.clamp(out.movedim(-3, -1)[0], 0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(array, "RGB")

    return upscale
