"""A1111's "Use PNG alpha channel as loss weight": an image's alpha channel, moved through the
same crops, resizes, pads and flips as its pixels, becomes a per-pixel weight of the latent loss.

As in A1111 the pixels under transparency keep their colours (the alpha is dropped, not
composited on white), the alpha map is resized to the latent's size (bicubic) and normalised to a minimum of
0 and a mean of 1, so the loss stays comparable to an unweighted one; images without alpha weigh 1
everywhere. Unlike A1111, the resize takes (width, height) the right way round for non-square
latents, and an alpha channel that is the same everywhere weighs 1 (A1111 divides 0 by 0 there).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data.dataset import DatasetItem, item_alpha


def weight_map(alpha: Image.Image | None, latent_size: tuple[int, int]) -> torch.Tensor:
    """(1, h, w) loss weights for a latent of `latent_size` (h, w): min 0, mean 1; ones without alpha."""
    height, width = latent_size
    if alpha is None:
        return torch.ones(1, height, width)
    resized = np.asarray(alpha.convert("L").resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    weight = torch.from_numpy(resized.copy())
    weight -= weight.min()
    mean = weight.mean()
    if mean <= 0:
        return torch.ones(1, height, width)
    return (weight / mean).unsqueeze(0)


def dataset_weight_maps(items: list[DatasetItem], latent_sizes: list[tuple[int, int]],
                        crop: Callable[[Image.Image], Image.Image]) -> list[torch.Tensor]:
    """One weight map per item; `crop` is what the pixels went through before encoding."""
    maps = []
    for item, size in zip(items, latent_sizes):
        alpha = item_alpha(item)
        maps.append(weight_map(None if alpha is None else crop(alpha), size))
    return maps
