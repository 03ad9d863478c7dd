"""Preprocess with an upscaler (the node passes the host's upscale model as a callable)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypernet.data.load import load_dataset
from hypernet.preprocess.preprocess_config import PreprocessConfig
from hypernet.preprocess.pipeline import preprocess
from tests.support.images import pattern_rgb


def _dataset(tmp_path, sizes):
    folder = tmp_path / "src"
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        pattern_rgb(w, h, seed=i).save(folder / f"img{i}.png")
    return load_dataset(str(folder)).dataset


class Nearest2x:
    """A stand-in for an AI upscaler: 2x nearest neighbour (easy to tell from a bicubic resize)."""

    def __init__(self):
        self.sizes = []

    def __call__(self, image):
        self.sizes.append(image.size)
        return image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST)


def test_only_images_smaller_than_the_target_go_through_the_upscaler(tmp_path):
    ds = _dataset(tmp_path, [(32, 32), (128, 128), (64, 40)])
    upscaler = Nearest2x()
    result = preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "out")),
                        upscale=upscaler)
    assert upscaler.sizes == [(32, 32), (64, 40)]  # 128x128 is shrunk, never upscaled
    assert [item.size for item in result.dataset] == [(64, 64)] * 3
    # 32x32 -> the model's 64x64 is the output itself, pixel for pixel (no resampling afterwards).
    first = np.asarray(Image.open(result.dataset[0].path).convert("RGB"))
    expected = np.asarray(pattern_rgb(32, 32, 0).resize((64, 64), Image.Resampling.NEAREST))
    assert np.array_equal(first, expected)
    assert result.stats["model_upscaled"] == 2 and result.stats["upscaled"] == 0
    assert "Upscaled with upscale_model before crop/fit (smaller than the target): 2" in result.report


def test_without_the_upscaler_small_images_are_resampled(tmp_path):
    ds = _dataset(tmp_path, [(32, 32)])
    result = preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "out")))
    first = np.asarray(Image.open(result.dataset[0].path).convert("RGB"))
    nearest = np.asarray(pattern_rgb(32, 32, 0).resize((64, 64), Image.Resampling.NEAREST))
    assert not np.array_equal(first, nearest) and result.stats["upscaled"] == 1


def test_upscaler_needs_an_output_folder_and_must_enlarge(tmp_path):
    ds = _dataset(tmp_path, [(32, 32)])
    with pytest.raises(ValueError, match="upscale_model needs an output_directory"):
        preprocess(ds, PreprocessConfig(width=64, height=64), upscale=Nearest2x())
    with pytest.raises(ValueError, match="upscale_model returned 16x16"):
        preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "o2")),
                   upscale=lambda image: image.resize((16, 16)))
