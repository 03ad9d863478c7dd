"""Preview batch (ComfyUI IMAGE: float32 [N, H, W, 3] in 0..1) of the first dataset items."""
from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from .dataset import Dataset, load_item_image

log = logging.getLogger(__name__)

_PAD = (32, 32, 32)


def preview_tensor(dataset: Dataset, count: int, max_side: int = 512) -> torch.Tensor:
    """Final images of the first `count` items, letterboxed onto one common canvas.

    The canvas is the largest width/height among them, scaled so its long side <= max_side.
    Items that fail to load are left out (logged). With nothing to show, one black 64x64 image
    is returned because ComfyUI cannot display an empty batch.
    """
    images: list[Image.Image] = []
    for item in dataset.items[:max(0, count)]:
        try:
            images.append(load_item_image(item))
        except ValueError as exc:
            log.warning("preview: %s", exc)
    if not images:
        return torch.zeros((1, 64, 64, 3), dtype=torch.float32)
    cw = max(im.width for im in images)
    ch = max(im.height for im in images)
    scale = min(1.0, max_side / max(cw, ch))
    cw, ch = max(1, round(cw * scale)), max(1, round(ch * scale))
    batch = np.empty((len(images), ch, cw, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        fit = min(cw / im.width, ch / im.height)
        size = (max(1, min(cw, round(im.width * fit))), max(1, min(ch, round(im.height * fit))))
        if size != im.size:
            im = im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        canvas = Image.new("RGB", (cw, ch), _PAD)
        canvas.paste(im, ((cw - size[0]) // 2, (ch - size[1]) // 2))
        batch[i] = np.asarray(canvas)
    return torch.from_numpy(batch).float().div_(255.0)
