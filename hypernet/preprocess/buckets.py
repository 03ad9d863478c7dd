"""kohya-style aspect-ratio buckets: the bucket list, per-image bucket choice, and its crop.

Rules (kohya sd-scripts `make_bucket_resolutions` / `BucketManager.select_bucket`, re-derived
from the spec): buckets keep the area at most W*H with sides on a `step` grid; an image goes to
the bucket of closest aspect (ties: closest area), is scaled to cover it and centre-cropped.
With `no_upscale`, images are never enlarged: larger ones are shrunk to area W*H and every
image gets its own bucket = its (resized) size floored to the step grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..data.dataset import Transform

Size = tuple[int, int]


def validate_bucket_params(width: int, height: int, min_size: int, max_size: int, step: int) -> None:
    """Raise ValueError naming the field when the bucket settings cannot work together."""
    if not isinstance(step, int) or step < 8 or step % 8:
        raise ValueError(f"bucket_step={step!r} must be a multiple of 8 (64 recommended)")
    for name, value in (("bucket_min", min_size), ("bucket_max", max_size)):
        if not isinstance(value, int) or value < 8 or value % 8:
            raise ValueError(f"{name}={value!r} must be a positive multiple of 8")
    if min_size > max_size:
        raise ValueError(f"bucket_min={min_size} is larger than bucket_max={max_size}; swap them")
    if min_size > min(width, height):
        raise ValueError(f"bucket_min={min_size} must be <= the smaller of width/height "
                         f"({min(width, height)}); lower bucket_min")
    if max_size < max(width, height):
        raise ValueError(f"bucket_max={max_size} must be >= the larger of width/height "
                         f"({max(width, height)}); raise bucket_max")


def make_bucket_resolutions(max_reso: Size, min_size: int = 256, max_size: int = 1024,
                            step: int = 64) -> list[Size]:
    """All buckets for training resolution `max_reso` = (W, H), sorted by (width, height)."""
    max_area = max_reso[0] * max_reso[1]
    side = int(math.sqrt(max_area) // step) * step
    resos: set[Size] = {(side, side)}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // step) * step)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += step
    return sorted(resos)


@dataclass(frozen=True, slots=True)
class BucketChoice:
    """`resized`: size the image is scaled to; `bucket`: the centre crop taken from it."""

    bucket: Size
    resized: Size

    @property
    def aspect_error(self) -> float:
        """Aspect distortion avoided by cropping: |resized aspect - bucket aspect|."""
        return abs(self.resized[0] / self.resized[1] - self.bucket[0] / self.bucket[1])


def round_to_steps(value: float, step: int) -> int:
    """kohya's rounding of a side to the step grid (round half up, then floor to step)."""
    rounded = int(value + 0.5)
    return rounded - rounded % step


def _no_upscale_size(width: int, height: int, max_area: int, step: int) -> Size:
    if width * height <= max_area:
        return (width, height)
    aspect = width / height
    rw = math.sqrt(max_area * aspect)
    rh = max_area / rw
    w_rounded = round_to_steps(rw, step)
    h_for_w = round_to_steps(w_rounded / aspect, step)
    err_w = abs(w_rounded / h_for_w - aspect) if h_for_w else math.inf
    h_rounded = round_to_steps(rh, step)
    w_for_h = round_to_steps(h_rounded * aspect, step)
    err_h = abs(w_for_h / h_rounded - aspect) if h_rounded else math.inf
    if err_w < err_h:
        return (w_rounded, int(w_rounded / aspect + 0.5))
    if h_rounded:
        return (int(h_rounded * aspect + 0.5), h_rounded)
    return (max(1, int(rw + 0.5)), max(1, int(rh + 0.5)))


def select_bucket(width: int, height: int, buckets: list[Size], *, max_area: int, step: int,
                  no_upscale: bool = False) -> BucketChoice:
    """Bucket for one image of size width x height. Raises ValueError if it fits none."""
    if no_upscale:
        resized = _no_upscale_size(width, height, max_area, step)
        bucket = (resized[0] - resized[0] % step, resized[1] - resized[1] % step)
        if bucket[0] < step or bucket[1] < step:
            raise ValueError(f"image {width}x{height} is smaller than bucket_step={step} on one side "
                             "with no_upscale; allow upscaling or lower bucket_step")
        return BucketChoice(bucket, resized)
    if not buckets:
        raise ValueError("the bucket list is empty; check bucket_min/bucket_max/bucket_step")
    if (width, height) in buckets:
        return BucketChoice((width, height), (width, height))
    aspect = width / height
    area = width * height
    bucket = min(buckets, key=lambda b: (abs(b[0] / b[1] - aspect), abs(b[0] * b[1] - area)))
    if aspect > bucket[0] / bucket[1]:
        scale = bucket[1] / height  # relatively wider: match height, crop width
    else:
        scale = bucket[0] / width
    resized = (max(bucket[0], int(width * scale + 0.5)), max(bucket[1], int(height * scale + 0.5)))
    return BucketChoice(bucket, resized)


def bucket_transform(width: int, height: int, choice: BucketChoice) -> Transform:
    """Transform that scales a width x height image to `resized` and centre-crops the bucket."""
    rw, rh = choice.resized
    bw, bh = choice.bucket
    sx, sy = rw / width, rh / height
    ox, oy = (rw - bw) // 2, (rh - bh) // 2
    if (rw, rh) == (width, height):
        return Transform((ox, oy, ox + bw, oy + bh), (bw, bh))
    return Transform((ox / sx, oy / sy, (ox + bw) / sx, (oy + bh) / sy), (bw, bh))
