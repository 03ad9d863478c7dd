"""A1111 "Split oversized images": cut a long image into overlapping target-sized tiles.

The image is scaled so its short axis matches the target, giving a long axis of L pixels; with
T the target's long-axis size, n = ceil((L - T*overlap) / (T*(1 - overlap))) tiles are cut at
int(i * (L - T)/(n - 1)): the first flush with the start, the last flush with the end.
"""
from __future__ import annotations

import math

from ..data.dataset import Transform


def split_ratio(width: int, height: int, target_w: int, target_h: int) -> tuple[float, bool]:
    """(ratio, along_x): ratio <= 1 measures how much longer the image is than the target.

    Portrait images (h > w) are split along y; all others along x (A1111's `inverse_xy`).
    """
    if height > width:
        return (width * target_h) / (height * target_w), False
    return (height * target_w) / (width * target_h), True


def split_tiles(width: int, height: int, target_w: int, target_h: int,
                threshold: float = 0.5, overlap: float = 0.2) -> list[Transform] | None:
    """Tile transforms for a width x height image, or None when it is not oversized.

    threshold is clamped to 0..1 and overlap to 0..0.9, as in A1111.
    """
    threshold = min(max(threshold, 0.0), 1.0)
    overlap = min(max(overlap, 0.0), 0.9)
    ratio, along_x = split_ratio(width, height, target_w, target_h)
    if not (ratio < 1 and ratio <= threshold):
        return None
    if along_x:
        short_src, long_src, short_t, long_t = height, width, target_h, target_w
    else:
        short_src, long_src, short_t, long_t = width, height, target_w, target_h
    long_len = long_src * short_t // short_src  # scaled long side (A1111 floors)
    count = max(1, math.ceil((long_len - long_t * overlap) / (long_t * (1.0 - overlap))))
    step = (long_len - long_t) / (count - 1) if count > 1 else 0.0
    scale_long = long_len / long_src
    tiles: list[Transform] = []
    for i in range(count):
        start = int(step * i)
        a, b = start / scale_long, (start + long_t) / scale_long
        b = min(b, float(long_src))
        box = (a, 0.0, b, float(height)) if along_x else (0.0, a, float(width), b)
        tiles.append(Transform(box, (target_w, target_h)))
    return tiles
