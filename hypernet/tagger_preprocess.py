"""Image preprocessing for WD14 taggers, following the SmilingWolf reference pipeline.

alpha composited over white -> pad to a centred white square of side max(h, w, size)
(extra pixel bottom/right) -> area-downscale to `size` when larger (never upscaled: small
images sit centred at native size, as in the reference) -> BGR -> float32 0..255, HWC.
The reference uses cv2 INTER_AREA (fractional pixel-area averaging, rounded to uint8); cv2 is not
a dependency, so `area_resize` implements the same average in numpy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

WHITE = (255, 255, 255)


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


def _area_axis0(arr: np.ndarray, out_n: int, chunk: int = 256) -> np.ndarray:
    """Average `arr` (float64) along axis 0 into `out_n` cells of equal fractional width."""
    in_n = arr.shape[0]
    scale = in_n / out_n
    bounds = np.arange(out_n + 1, dtype=np.float64) * scale
    bounds[-1] = in_n
    whole = np.minimum(np.floor(bounds).astype(np.int64), in_n - 1)
    frac = bounds - whole
    out = np.empty((out_n,) + arr.shape[1:], dtype=np.float64)
    for start in range(0, arr.shape[1], chunk):  # bounded memory on large images
        part = arr[:, start:start + chunk]
        csum = np.concatenate([np.zeros((1,) + part.shape[1:]), np.cumsum(part, axis=0)], axis=0)
        expand = (slice(None),) + (None,) * (part.ndim - 1)
        at = csum[whole] + frac[expand] * part[whole]  # integral of the image up to each bound
        out[:, start:start + chunk] = (at[1:] - at[:-1]) / scale
    return out


def area_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Downscale an HWC uint8 array to size x size by pixel-area averaging (cv2 INTER_AREA)."""
    arr = _area_axis0(rgb.astype(np.float64), size)
    arr = _area_axis0(arr.transpose(1, 0, 2), size).transpose(1, 0, 2)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def preprocess_image(image: Image.Image, size: int) -> np.ndarray:
    """One model input row: float32 BGR array of shape (size, size, 3), values 0..255."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"model input size must be a positive integer, got {size!r}")
    square = pad_to_square(composite_on_white(image), size)
    rgb = np.asarray(square, dtype=np.uint8)
    if rgb.shape[0] > size:
        rgb = area_resize(rgb, size)
    return np.ascontiguousarray(rgb[:, :, ::-1], dtype=np.float32)
