"""Small JPEG thumbnails for the dataset editor's gallery (the source file is only read)."""
from __future__ import annotations

import io

from PIL import Image, ImageOps

from .images import DEFAULT_MAX_PIXELS, BadImageError, to_rgb

THUMB_SIZES = (64, 128, 192, 256, 384, 512)


def thumbnail_jpeg(path: str, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, quality: int = 82) -> bytes:
    """The image at `path`, oriented and shrunk to fit `size` x `size`, as JPEG bytes."""
    if size not in THUMB_SIZES:
        raise ValueError(f"size {size}: use one of {', '.join(map(str, THUMB_SIZES))}")
    try:
        with Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise BadImageError(path, "too_large", f"{img.width}x{img.height}")
            img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, much faster
            img = ImageOps.exif_transpose(img)
            img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = to_rgb(img)
    except BadImageError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(path, "unreadable", str(exc)) from exc
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality)
    return out.getvalue()
