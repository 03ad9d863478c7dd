"""Conversions between PIL images and ComfyUI IMAGE tensors (B, H, W, 3 floats in 0..1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image


def pil_to_image(images: Sequence[Image.Image] | Image.Image) -> torch.Tensor:
    """One IMAGE batch from PIL images of one size."""
    if isinstance(images, Image.Image):
        images = [images]
    arrays = [np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0 for img in images]
    return torch.from_numpy(np.stack(arrays))


def image_to_pil(image: torch.Tensor) -> list[Image.Image]:
    """PIL images from an IMAGE batch."""
    array = (image.detach().float().cpu().clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)
    return [Image.fromarray(frame) for frame in array]
