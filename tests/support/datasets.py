"""Small image datasets made in code for training tests and the demo (no downloads)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CAPTIONS = ["red circle, white background", "blue square, white background",
            "green triangle, white background", "yellow stripes, white background"]


def make_shapes_dataset(folder: Path, count: int = 4, size: int = 64, seed: int = 0) -> Path:
    """`count` simple shape images with `.txt` captions next to them; returns the folder."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colors = [(220, 30, 30), (30, 60, 220), (30, 180, 60), (230, 210, 40)]
    for index in range(count):
        image = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(image)
        kind = index % 4
        margin = size // 6 + int(rng.integers(0, size // 8))
        box = [margin, margin, size - margin, size - margin]
        color = colors[kind]
        if kind == 0:
            draw.ellipse(box, fill=color)
        elif kind == 1:
            draw.rectangle(box, fill=color)
        elif kind == 2:
            draw.polygon([(size // 2, margin), (size - margin, size - margin), (margin, size - margin)], fill=color)
        else:
            for y in range(0, size, 8):
                draw.rectangle([0, y, size, y + 3], fill=color)
        image.save(folder / f"{index:02d}_shape.png")
        (folder / f"{index:02d}_shape.txt").write_text(CAPTIONS[kind] + "\n", encoding="utf-8")
    return folder


def make_half_transparent_dataset(folder: Path, noise_seed: int, transparent: bool = True, width: int = 64,
                                  height: int = 64, right: str = "noise", count: int = 4) -> Path:
    """`count` images: an opaque coloured shape on the left half and, on the right half, RGB noise
    from `noise_seed` (or flat grey with `right="flat"`) that is transparent (alpha 0, its colours
    kept in the RGBA file) or, with `transparent` False, opaque (saved as RGB); `.txt` captions."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(noise_seed)
    half = width // 2
    for index in range(count):
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        if right == "flat":
            colours = np.full((height, width - half, 3), 128, np.uint8)
        else:
            colours = rng.integers(0, 256, (height, width - half, 3), dtype=np.uint8)
        alpha = np.full((height, width - half), 0 if transparent else 255, np.uint8)
        image.paste(Image.fromarray(np.dstack([colours, alpha]), "RGBA"), (half, 0))
        left = Image.new("RGBA", (half, height), (30 + 50 * index, 90, 200 - 40 * index, 255))
        ImageDraw.Draw(left).ellipse((half // 8, 8 + 4 * index, half - half // 8, 40 + 4 * index),
                                     fill=(250, 250, 20, 255))
        image.paste(left, (0, 0))
        (image if transparent else image.convert("RGB")).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"shape {index}", encoding="utf-8")
    return folder
