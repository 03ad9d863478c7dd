"""Image files: cheap header reads for scanning, and decoding to oriented 8-bit RGB.

Scanning must never decode pixels, so `read_header` uses only what PIL parses at open time
(size, mode, EXIF orientation stored before the pixel data) plus a look at the file's tail.
`load_rgb` decodes, applies the *same* orientation `read_header` saw, and normalises every mode
(palette, grayscale, 16-bit, float, CMYK, alpha) to RGB, compositing alpha on white.
Truncated files raise BadImageError("truncated") unless some other package has switched on
PIL's process-wide ImageFile.LOAD_TRUNCATED_IMAGES (we never change that global).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .images_png import png_size_fast

log = logging.getLogger(__name__)

#: File name endings LoadDataset reads (lower case, with the dot).
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)

#: Default pixel limit above which an image is treated as a decompression bomb (PIL's own).
DEFAULT_MAX_PIXELS: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)

#: Reasons a file is rejected; the report counts files per reason.
BAD_REASONS: dict[str, str] = {
    "zero_byte": "zero-byte file",
    "corrupt": "not a readable image (corrupt or wrong extension)",
    "truncated": "truncated image data",
    "too_large": "decompression bomb (too many pixels)",
    "outside_folder": "symlink pointing outside the dataset folder",
    "symlink_loop": "symlink that cannot be followed (it points to itself or loops)",
    "unreadable": "cannot be read (permissions or I/O error)",
    "unusable": "cannot be used with these settings",
}

_TAIL_BYTES = 1024
_ORIENTATION_TAG = 274
_WHITE = (255, 255, 255)


class BadImageError(ValueError):
    """A file that cannot be used as a training image; `reason` is a key of BAD_REASONS."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        text = BAD_REASONS.get(reason, reason)
        super().__init__(f"{path}: {text}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """Size as the image will appear after EXIF orientation, read without decoding pixels."""

    width: int
    height: int
    format: str
    orientation: int


def header_orientation(img: Image.Image) -> int:
    """EXIF orientation (1..8) from the data PIL parsed at open time; never decodes pixels.

    PNG's own `getexif()` loads the whole image to find an eXIf chunk stored after the pixel
    data; the base implementation only looks at what was already parsed, which is what we want
    (and `load_rgb` uses this same function, so scan size and decoded size always agree).
    """
    try:
        value = Image.Image.getexif(img).get(_ORIENTATION_TAG, 1)
    except Exception as exc:  # malformed EXIF must not make an image unusable
        log.debug("ignoring unreadable EXIF in %s: %s", getattr(img, "filename", "?"), exc)
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _check_pixels(path: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImageError(path, "corrupt", f"size {width}x{height}")
    if width * height > max_pixels:
        raise BadImageError(path, "too_large", f"{width}x{height} > {max_pixels} pixels")


def _tail_looks_truncated(fmt: str, tail: bytes, file_size: int, head: bytes) -> bool:
    """Cheap end-of-file check; a True only triggers a full decode that decides."""
    if fmt == "PNG":
        return b"IEND" not in tail
    if fmt in ("JPEG", "MPO"):
        return b"\xff\xd9" not in tail
    if fmt == "GIF":
        return not tail.rstrip(b"\x00").endswith(b";")
    if fmt == "WEBP" and len(head) >= 8 and head[:4] == b"RIFF":
        return int.from_bytes(head[4:8], "little") + 8 > file_size
    if fmt == "BMP" and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return declared > file_size
    return False


def _open_error(path: str, exc: BaseException) -> BadImageError:
    if isinstance(exc, Image.DecompressionBombError):
        return BadImageError(path, "too_large", str(exc))
    if isinstance(exc, UnidentifiedImageError):
        return BadImageError(path, "corrupt", "unknown image format")
    if isinstance(exc, (PermissionError, IsADirectoryError)):
        return BadImageError(path, "unreadable", str(exc))
    text = str(exc)
    if "truncated" in text.lower():
        return BadImageError(path, "truncated", text)
    return BadImageError(path, "corrupt", text or type(exc).__name__)


def read_header(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, verify: str = "fast",
                file_size: int | None = None) -> ImageHeader:
    """Read size/orientation of one image without keeping pixels; raise BadImageError if unusable.

    verify="fast": header + end-of-file marker check (PNG IEND, JPEG EOI, GIF trailer, RIFF/BMP
    sizes); only files whose tail looks wrong are fully decoded to decide. verify="full": every
    file is decoded once (slow, catches damage in the middle of the data).
    """
    if verify not in ("fast", "full"):
        raise ValueError(f"verify={verify!r} is not valid; use 'fast' or 'full'")
    try:
        size = os.path.getsize(path) if file_size is None else file_size
        if size == 0:
            raise BadImageError(path, "zero_byte")
        with open(path, "rb") as fh:
            img = None
            fast = png_size_fast(fh) if verify == "fast" else None
            if fast is not None:
                (width, height), fmt, orientation = fast, "PNG", 1
            else:
                fh.seek(0)
                try:
                    img = Image.open(fh)
                    width, height = img.size
                    fmt = img.format or ""
                    orientation = header_orientation(img)
                except BadImageError:
                    raise
                except Exception as exc:
                    raise _open_error(path, exc) from exc
            _check_pixels(path, width, height, max_pixels)
            need_decode = verify == "full"
            if not need_decode:
                fh.seek(0)
                head = fh.read(16)
                fh.seek(max(0, size - _TAIL_BYTES))
                tail = fh.read()
                need_decode = _tail_looks_truncated(fmt, tail, size, head)
            if need_decode:
                try:
                    if img is None:
                        fh.seek(0)
                        img = Image.open(fh)
                    img.load()
                except Exception as exc:
                    raise _open_error(path, exc) from exc
                finally:
                    if img is not None:
                        img.close()
    except BadImageError:
        raise
    except OSError as exc:
        raise BadImageError(path, "unreadable", str(exc)) from exc
    if orientation >= 5:
        width, height = height, width
    return ImageHeader(width, height, fmt, orientation)


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_to_l(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float grayscale -> 8-bit L by scaling, not clipping."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        scaled = arr * 255.0 if peak <= 1.0 else arr  # float images are 0..1 or 0..255
        out = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    else:
        # I;16* and I (PIL opens 16-bit PNG/TIFF grayscale as these) hold 0..65535.
        out = (np.clip(arr.astype(np.int64), 0, 65535) // 257).astype(np.uint8)
    return Image.fromarray(out, "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I") or mode == "F":
        return _wide_to_l(img).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _composite_on_white(img)
    return img.convert("RGB")  # P, L, 1, CMYK, YCbCr, LAB, HSV


def _decode(path: str, max_pixels: int) -> tuple[Image.Image, int]:
    """The decoded (not yet oriented) image and its EXIF orientation. Raises BadImageError."""
    try:
        with open(path, "rb") as fh:
            try:
                img = Image.open(fh)
                _check_pixels(path, img.size[0], img.size[1], max_pixels)
                orientation = header_orientation(img)
                img.load()
            except BadImageError:
                raise
            except Exception as exc:
                raise _open_error(path, exc) from exc
    except BadImageError:
        raise
    except OSError as exc:
        raise BadImageError(path, "unreadable", str(exc)) from exc
    return img, orientation


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def load_alpha(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image | None:
    """The oriented alpha channel (mode L) of an image file, None when it has no transparency
    (the loss weight map of A1111's "Use PNG alpha channel as loss weight")."""
    img, orientation = _decode(path, max_pixels)
    if not _has_alpha(img):
        return None
    alpha = img.convert("RGBA").getchannel("A")
    method = _TRANSPOSE.get(orientation)
    return alpha.transpose(method) if method is not None else alpha


def load_rgb(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, composite_alpha: bool = True) -> Image.Image:
    """Decode an image file to oriented RGB (first frame of animations). Raises BadImageError.

    `composite_alpha` False keeps the colours under transparent pixels (alpha dropped, as A1111
    does when the alpha channel is the loss weight) instead of compositing on white."""
    img, orientation = _decode(path, max_pixels)
    rgb = to_rgb(img) if composite_alpha or not _has_alpha(img) else img.convert("RGBA").convert("RGB")
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        rgb = rgb.transpose(method)
    return rgb

