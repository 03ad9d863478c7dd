"""Build small test images in code: every PIL mode LoadDataset must handle, odd and extreme
sizes, EXIF-rotated JPEGs, animations, and broken files (zero-byte, corrupt, truncated, bombs)."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pattern_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    """Deterministic colourful RGB image: gradients plus a seeded noise texture."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    noise = rng.integers(0, 64, size=(height, width), dtype=np.int64).astype(np.float32)
    arr = np.stack([x, y, (x + y) / 2 + noise], axis=-1)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def flat_with_patch(width: int, height: int, patch: tuple[int, int, int, int],
                    seed: int = 1, grey: int = 128) -> Image.Image:
    """Flat grey image with a high-detail noise patch at (left, top, right, bottom)."""
    arr = np.full((height, width, 3), grey, dtype=np.uint8)
    left, top, right, bottom = patch
    rng = np.random.default_rng(seed)
    arr[top:bottom, left:right] = rng.integers(0, 256, size=(bottom - top, right - left, 3),
                                               dtype=np.int64).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def mode_image(mode: str, width: int = 24, height: int = 16) -> Image.Image:
    """An image in PIL `mode` (P, L, I;16, CMYK, RGBA, LA, RGB, 1, F)."""
    base = pattern_rgb(width, height)
    if mode == "P":
        return base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    if mode == "I;16":
        arr = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        return Image.fromarray(arr)  # uint16 -> mode I;16
    if mode == "RGBA":
        img = base.convert("RGBA")
        alpha = np.zeros((height, width), np.uint8)
        alpha[:, : width // 2] = 255  # right half fully transparent
        img.putalpha(Image.fromarray(alpha, "L"))
        return img
    if mode == "LA":
        img = base.convert("LA")
        alpha = np.zeros((height, width), np.uint8)
        alpha[:, : width // 2] = 255
        img.putalpha(Image.fromarray(alpha, "L"))
        return img
    return base.convert(mode)


def exif_rotated_jpeg(path: Path, stored_w: int = 40, stored_h: int = 20, orientation: int = 6) -> None:
    """JPEG stored as stored_w x stored_h with an EXIF orientation tag (6 = rotate 90 CW)."""
    img = pattern_rgb(stored_w, stored_h)
    exif = Image.Exif()
    exif[274] = orientation
    img.save(path, format="JPEG", exif=exif.tobytes(), quality=90)


def animated_gif(path: Path, width: int = 20, height: int = 12) -> None:
    """Two-frame GIF: first frame red, second blue."""
    frames = [Image.new("RGB", (width, height), (255, 0, 0)), Image.new("RGB", (width, height), (0, 0, 255))]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


#: name -> (builder, expected oriented size). Builders write one file to the given path.
MODE_FILES = {
    "palette.png": (lambda p: mode_image("P").save(p), (24, 16)),
    "gray.png": (lambda p: mode_image("L").save(p), (24, 16)),
    "gray16.png": (lambda p: mode_image("I;16").save(p), (24, 16)),
    "cmyk.jpg": (lambda p: mode_image("CMYK").save(p, format="JPEG"), (24, 16)),
    "rgba.png": (lambda p: mode_image("RGBA").save(p), (24, 16)),
    "la.png": (lambda p: mode_image("LA").save(p), (24, 16)),
    "rotated.jpg": (lambda p: exif_rotated_jpeg(p), (20, 40)),
    "anim.gif": (lambda p: animated_gif(p), (20, 12)),
    "photo.webp": (lambda p: pattern_rgb(30, 18).save(p, format="WEBP", lossless=True), (30, 18)),
    "bitmap.bmp": (lambda p: pattern_rgb(17, 9).save(p, format="BMP"), (17, 9)),
    "scan.tiff": (lambda p: pattern_rgb(22, 14).save(p, format="TIFF"), (22, 14)),
    "odd.png": (lambda p: pattern_rgb(37, 23).save(p), (37, 23)),
    "tiny.png": (lambda p: pattern_rgb(10, 7).save(p), (10, 7)),
}


def build_mode_zoo(folder: Path) -> dict[str, tuple[int, int]]:
    """Write MODE_FILES into `folder`; return name -> expected (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (builder, _) in MODE_FILES.items():
        builder(folder / name)
    return {name: size for name, (_, size) in MODE_FILES.items()}


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


def truncated_copy(data: bytes, path: Path, keep: float = 0.5) -> None:
    """Write the first `keep` fraction of an encoded image."""
    path.write_bytes(data[: max(1, int(len(data) * keep))])


def build_bad_files(folder: Path) -> dict[str, str]:
    """Broken files; returns name -> expected reason key."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.png").write_bytes(b"")
    (folder / "garbage.png").write_bytes(b"this is not an image at all" * 10)
    big = pattern_rgb(64, 64, seed=3)
    truncated_copy(png_bytes(big), folder / "cut.png", 0.6)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=95)
    truncated_copy(buf.getvalue(), folder / "cut.jpg", 0.5)
    bomb_png(folder / "bomb.png")
    return {"zero.png": "zero_byte", "garbage.png": "corrupt", "cut.png": "truncated",
            "cut.jpg": "truncated", "bomb.png": "too_large"}


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder (relative path -> hex), plus mtimes folded in."""
    out: dict[str, str] = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(folder))] = f"{digest}:{path.stat().st_mtime_ns}"
    return out
