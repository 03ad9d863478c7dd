"""Image preprocessing for WD14 taggers, following the SmilingWolf reference pipeline.

alpha composited over white -> pad to a centred white square of side max(h, w, size)
(extra pixel bottom/right) -> area-downscale to `size` when larger (never upscaled: small
images sit centred at native size, as in the reference) -> BGR -> float32 0..255, HWC.
The reference uses cv2 INTER_AREA (fractional pixel-area averaging, rounded to uint8); cv2 is not
a dependency, so `area_resize` implements the same average in numpy (exactly, in integers).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

WHITE = (255, 255, 255)
_BAND_BYTES = 128 * 1024  # intermediate sums per band of output rows in area_resize


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image file fully (so corrupt data fails here) and apply its EXIF orientation."""
    with Image.open(Path(path)) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return img.copy()


def image_from_array(array: Any) -> Image.Image:
    """PIL image from an HWC array (ComfyUI IMAGE item: RGB or RGBA float in 0..1, or uint8)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"image array must be HWC with 1, 3 or 4 channels, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def composite_on_white(image: Image.Image) -> Image.Image:
    """RGB image with any transparency composited over white."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")  # no copy: nothing to composite
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def pad_to_square(image: Image.Image, min_side: int = 0) -> Image.Image:
    """Centre `image` on a white square of side max(w, h, min_side); extra pixel goes bottom/right."""
    w, h = image.size
    side = max(w, h, min_side)
    if (w, h) == (side, side):
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def _area_weights(in_n: int, out_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which source pixels each output cell covers, and by how much, in units of 1/out_n pixel.

    Cell o spans [o * in_n / out_n, (o + 1) * in_n / out_n); every bound is a multiple of 1/out_n,
    so each overlap is a whole number of units and the weighted sums below are exact integers.
    Returns (index, units), both (out_n, taps) int64 with taps = ceil(in_n / out_n) + 1.
    """
    taps = -(-in_n // out_n) + 1
    starts = np.arange(out_n, dtype=np.int64) * in_n  # cell bounds, in units
    ends = starts + in_n
    index = starts[:, None] // out_n + np.arange(taps, dtype=np.int64)[None, :]
    lo = np.maximum(index * out_n, starts[:, None])
    hi = np.minimum((index + 1) * out_n, ends[:, None])
    return np.minimum(index, in_n - 1), np.clip(hi - lo, 0, None)


def _area_sums(arr: np.ndarray, weights: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """Area-weighted sums (in units, not yet divided) along `axis` (0 or 1 of an HWC array), for the
    cells whose (index, units) are given (from _area_weights, units already in the sums' dtype): a
    few gathered rows or columns per cell, each times its whole-number weight. The gathers read the
    input as it is (uint8 in the first pass)."""
    index, units = weights
    if axis == 0:
        out = units[:, 0, None, None] * arr[index[:, 0]]
        for tap in range(1, index.shape[1]):
            out += units[:, tap, None, None] * arr[index[:, tap]]
        return out
    out = units[None, :, 0, None] * arr[:, index[:, 0]]
    for tap in range(1, index.shape[1]):
        out += units[None, :, tap, None] * arr[:, index[:, tap]]
    return out


def _sum_dtype(largest: int) -> type:
    """The narrowest integer type that holds sums up to `largest`."""
    return np.uint16 if largest < 2 ** 16 else np.int32 if largest < 2 ** 31 else np.int64


def _cells_seeing(weights: tuple[np.ndarray, np.ndarray], start: int, stop: int) -> slice:
    """The output cells (of _area_weights' `weights`) whose source span overlaps source pixels
    [start, stop) (a contiguous run)."""
    index, units = weights
    seeing = np.flatnonzero(((units > 0) & (index >= start) & (index < stop)).any(axis=1))
    return slice(int(seeing[0]), int(seeing[-1]) + 1) if seeing.size else slice(0, 0)


def area_resize(rgb: np.ndarray, size: int, content: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Downscale an HWC uint8 array to size x size by pixel-area averaging (cv2 INTER_AREA).

    Integer arithmetic throughout: the weighted sums are exact (in the narrowest integer type that
    holds them), divided once at the end and rounded half to even, so the average is correctly
    rounded instead of depending on float summation order.
    `content` (top, bottom, left, right): everything outside it is white (the square's pad). Cells
    that see only pad are white in the result without arithmetic; the rest are computed as above.
    """
    height, width = rgb.shape[:2]
    if size > height or size > width:
        raise ValueError(f"area_resize only downscales: {width}x{height} to {size}x{size}")
    top, bottom, left, right = content if content is not None else (0, height, 0, width)
    row_index, row_units = _area_weights(height, size)
    col_index, col_units = _area_weights(width, size)
    rows = _cells_seeing((row_index, row_units), top, bottom)
    cols = _cells_seeing((col_index, col_units), left, right)
    # Weights in units of gcd(n, size)/size pixel instead of 1/size: the same exact sums, divided by
    # the common factor, small enough for uint16 in the usual sizes (1024 or 768 px to 448: half
    # the memory traffic of int32).
    row_gcd, col_gcd = math.gcd(height, size), math.gcd(width, size)
    row_total, col_total = height // row_gcd, width // col_gcd
    row_dtype, dtype = _sum_dtype(255 * row_total), _sum_dtype(255 * row_total * col_total)
    row_units = (row_units // row_gcd).astype(row_dtype)
    col_weights = (col_index[cols], (col_units[cols] // col_gcd).astype(dtype))
    area = row_total * col_total
    out = np.full((size, size, rgb.shape[2]), 255, np.uint8)
    # A band of output rows at a time: its intermediate sums stay small enough for the CPU cache
    # and for reused heap memory (whole-image temporaries cost more in page faults than in sums).
    band = max(1, _BAND_BYTES // max(1, width * rgb.shape[2] * np.dtype(row_dtype).itemsize))
    for first in range(rows.start, rows.stop, band):
        cells = slice(first, min(first + band, rows.stop))
        sums = _area_sums(_area_sums(rgb, (row_index[cells], row_units[cells]), 0), col_weights, 1)
        quotient, remainder = np.divmod(sums.astype(np.int64), area)
        quotient += (2 * remainder > area) | ((2 * remainder == area) & (quotient % 2 == 1))
        out[cells, cols] = np.clip(quotient, 0, 255)
    return out


def preprocess_image(image: Image.Image, size: int) -> np.ndarray:
    """One model input row: float32 BGR array of shape (size, size, 3), values 0..255."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"model input size must be a positive integer, got {size!r}")
    rgb_image = composite_on_white(image)
    square = pad_to_square(rgb_image, size)
    rgb = np.asarray(square, dtype=np.uint8)
    if rgb.shape[0] > size:
        top, left = (square.height - rgb_image.height) // 2, (square.width - rgb_image.width) // 2
        rgb = area_resize(rgb, size, (top, top + rgb_image.height, left, left + rgb_image.width))
    return np.ascontiguousarray(rgb[:, :, ::-1], dtype=np.float32)
