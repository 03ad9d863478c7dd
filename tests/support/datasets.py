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
