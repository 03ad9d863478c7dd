"""Preprocess keep_alpha: written PNGs keep an RGBA source's alpha, moved with the pixels."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from hypernet.data.dataset import apply_transform, load_item_image
from hypernet.data.load import load_dataset
from hypernet.preprocess.output import MANIFEST_NAME
from hypernet.preprocess.pipeline import preprocess
from hypernet.preprocess.preprocess_config import PreprocessConfig
from tests.support.images import pattern_rgb


def _rgba_source(width: int, height: int) -> Image.Image:
    """Pattern colours with an asymmetric alpha: a left-to-right ramp, a transparent block, an opaque stripe."""
    alpha = np.tile(np.linspace(0, 255, width, dtype=np.float32), (height, 1)).astype(np.uint8)
    alpha[height // 4: height // 2, width // 5: width // 3] = 0
    alpha[:, -width // 7:] = 255
    image = pattern_rgb(width, height, seed=3).convert("RGBA")
    image.putalpha(Image.fromarray(alpha, "L"))
    return image


@pytest.fixture()
def source(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    _rgba_source(300, 60).save(folder / "wide.png")     # split into tiles
    _rgba_source(90, 70).save(folder / "photo.png")     # cover-cropped
    pattern_rgb(80, 64, seed=1).save(folder / "opaque.png")
    return folder


def _cfg(out, **kw):
    return PreprocessConfig(**{"width": 64, "height": 64, "split_oversized": True, "flip": True,
                               "output_directory": str(out), **kw})


def test_written_alpha_follows_crop_flip_and_split(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    lazy = preprocess(ds, _cfg("")).dataset
    written = preprocess(ds, _cfg(tmp_path / "out", keep_alpha=True))
    assert written.stats["split"] >= 2 and written.stats["flipped"] == len(lazy) // 2
    assert "Kept the alpha channel" in written.report and written.stats["alpha_kept"] == len(lazy) - 2
    for plan, out in zip(lazy, written.dataset):
        with Image.open(plan.path) as src, Image.open(out.path) as png:
            png.load()
            if src.mode != "RGBA":
                assert png.mode == "RGB"
                continue
            assert png.mode == "RGBA" and png.size == out.size == plan.size
            alpha, pixels = src.getchannel("A"), src.convert("RGB")  # colours under alpha 0, not white
            for transform in plan.transforms:
                alpha, pixels = apply_transform(alpha, transform), apply_transform(pixels, transform)
            assert np.array_equal(np.asarray(png.getchannel("A")), np.asarray(alpha))
            assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(pixels))
            assert len(np.unique(np.asarray(alpha))) > 10  # a real pattern, not a constant
    names = [os.path.basename(i.path) for i in written.dataset if "photo" in i.path]
    first, mirrored = (Image.open(tmp_path / "out" / n) for n in names)
    assert names[1].split("-")[1] == "1" and np.array_equal(  # the flipped copy mirrors the alpha too
        np.asarray(mirrored.getchannel("A")), np.asarray(first.getchannel("A"))[:, ::-1])
    assert not np.array_equal(np.asarray(mirrored.getchannel("A")), np.asarray(first.getchannel("A")))


def test_alpha_off_by_default_and_without_alpha_outputs_are_unchanged(source, tmp_path):
    """keep_alpha off writes RGB on white (as before); on, files of sources without transparency
    (or with an alpha opaque everywhere) are byte-identical to those written with it off."""
    _rgba_source(70, 70).convert("RGB").convert("RGBA").save(source / "opaque_rgba.png")
    ds = load_dataset(str(source)).dataset
    default = preprocess(ds, _cfg(tmp_path / "off"))
    kept = preprocess(ds, _cfg(tmp_path / "on", keep_alpha=True))
    assert default.stats.get("alpha_kept", 0) == 0 and "Kept the alpha" not in default.report
    for item in default.dataset:
        with Image.open(item.path) as png:
            assert png.mode == "RGB"
    white = load_item_image(ds.items[[os.path.basename(i.path) for i in ds].index("photo.png")])
    assert np.asarray(white).max() == 255  # composited on white at load, as the default writes it
    off, on = (tmp_path / "off", tmp_path / "on")
    same = [n for n in sorted(os.listdir(off)) if n != MANIFEST_NAME
            and ("opaque" in n)]
    assert len(same) == 4
    for name in same:
        assert (off / name).read_bytes() == (on / name).read_bytes()
    assert any((off / n).read_bytes() != (on / n).read_bytes() for n in os.listdir(off) if "photo" in n)


def test_keep_alpha_must_be_a_boolean():
    with pytest.raises(ValueError, match="keep_alpha"):
        PreprocessConfig(keep_alpha="false")


def test_upscaled_rgba_keeps_its_alpha_at_the_models_size(tmp_path):
    """With an upscale model, the model enlarges the colours and the alpha follows to its size."""
    folder = tmp_path / "src"
    folder.mkdir()
    _rgba_source(32, 32).save(folder / "small.png")
    calls = []

    def nearest_2x(image):
        calls.append(image.mode)
        return image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST)

    result = preprocess(load_dataset(str(folder)).dataset,
                        PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "out"),
                                         keep_alpha=True), upscale=nearest_2x)
    with Image.open(result.dataset[0].path) as png:
        png.load()
        assert png.mode == "RGBA" and png.size == (64, 64)
        source = _rgba_source(32, 32)
        expected = np.asarray(source.getchannel("A").resize((64, 64), Image.Resampling.LANCZOS))
        assert np.array_equal(np.asarray(png.getchannel("A")), expected)
        colours = source.convert("RGB").resize((64, 64), Image.Resampling.NEAREST)  # not composited on white
        assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(colours))
    assert calls == ["RGB", "RGB"] and result.stats["model_upscaled"] == 1
