"""Preprocessing as the reference tagger: alpha over white, centred white pad, area downscale, BGR, 0..255."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypernet.tagger.preprocess import image_from_array, load_image, preprocess_image


def test_output_is_bgr_float32_0_255_hwc():
    img = Image.new("RGB", (8, 8), (10, 20, 30))
    out = preprocess_image(img, 8)
    assert out.shape == (8, 8, 3) and out.dtype == np.float32
    assert out[0, 0].tolist() == [30.0, 20.0, 10.0]


def test_alpha_is_composited_over_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 0, 255))
    img.putpixel((1, 0), (0, 0, 0, 128))
    out = preprocess_image(img, 4)
    assert out[1, 1].tolist() == [255.0] * 3  # fully transparent -> white, not stored black
    assert out[0, 0].tolist() == [0.0] * 3
    assert 120 <= out[0, 1, 0] <= 135


def test_pad_centred_extra_pixel_bottom_right_and_no_upscale():
    img = Image.new("RGB", (3, 2), (0, 0, 0))  # smaller than the model size: not upscaled
    out = preprocess_image(img, 6)
    black = np.argwhere(out[:, :, 0] == 0)
    assert black.min(axis=0).tolist() == [2, 1]  # top = (6-2)//2, left = (6-3)//2
    assert black.max(axis=0).tolist() == [3, 3]
    assert (out == 0).sum() == 3 * 2 * 3


def test_pad_then_area_downscale():
    # 8x4 image: left half black, right half white; padded to 8x8 (2 white rows top/bottom), then /2.
    arr = np.full((4, 8, 3), 255, dtype=np.uint8)
    arr[:, :4] = 0
    out = preprocess_image(Image.fromarray(arr), 4)
    assert out.shape == (4, 4, 3)
    assert out[0].max() == 255 and out[0].min() == 255  # top pad row
    assert out[1:3, :2].max() == 0 and out[1:3, 2:].min() == 255
    # non-integer factor: fractional pixel areas (cv2 INTER_AREA). 3x3 checker -> 2x2: each output
    # covers 1.5x1.5 source px: 0*1 + 255*0.5 + 255*0.5 + 0*0.25 over 2.25 = 113.3 -> 113
    checker = (np.indices((3, 3)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = preprocess_image(Image.fromarray(np.stack([checker] * 3, -1)), 2)
    assert small.ravel().tolist() == [113.0] * 12


def _exact_area_average(arr: np.ndarray, size: int) -> np.ndarray:
    """Brute force: each output pixel is the area-weighted mean of the source pixels its cell covers
    (fractions, no rounding until the end: half to even)."""
    from fractions import Fraction

    height, width = arr.shape[:2]

    def overlap(i, o, n):  # length of source pixel i inside output cell o, in source pixels
        lo, hi = max(Fraction(i), Fraction(o * n, size)), min(Fraction(i + 1), Fraction((o + 1) * n, size))
        return max(hi - lo, Fraction(0))

    out = np.zeros((size, size, arr.shape[2]), np.uint8)
    for oy in range(size):
        for ox in range(size):
            weights = [(y, x, overlap(y, oy, height) * overlap(x, ox, width))
                       for y in range(height) for x in range(width)]
            for c in range(arr.shape[2]):
                mean = sum(w * int(arr[y, x, c]) for y, x, w in weights if w) / (Fraction(height * width) / size**2)
                out[oy, ox, c] = round(mean)
    return out


@pytest.mark.parametrize("band_bytes", [None, 1])  # the default band, and one output row per band
@pytest.mark.parametrize("shape,size", [((9, 7), 3), ((11, 13), 4), ((8, 8), 3), ((10, 6), 6), ((7, 7), 7)])
def test_area_resize_is_the_exact_area_average(shape, size, band_bytes, monkeypatch):
    from hypernet.tagger import preprocess
    from hypernet.tagger.preprocess import area_resize

    if band_bytes is not None:
        monkeypatch.setattr(preprocess, "_BAND_BYTES", band_bytes)
    arr = np.random.default_rng(sum(shape) + size).integers(0, 256, shape + (3,), dtype=np.uint8)
    assert np.array_equal(area_resize(arr, size), _exact_area_average(arr, size))


@pytest.mark.parametrize("size_wh,side", [((1024, 768), 448), ((768, 1024), 448), ((300, 1000), 448),
                                          ((2000, 1501), 448), ((1023, 17), 5), ((449, 448), 448)])
def test_cells_that_see_only_the_pad_are_white_and_the_rest_unchanged(size_wh, side):
    """preprocess_image skips the arithmetic for output cells that see only the white pad; the
    result is the same as resizing the whole padded square (and banded the same as in one piece)."""
    from hypernet.tagger import preprocess

    width, height = size_wh
    arr = np.random.default_rng(width + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    square = np.asarray(preprocess.pad_to_square(Image.fromarray(arr), side), dtype=np.uint8)
    whole = preprocess.area_resize(square, side)
    assert np.array_equal(preprocess_image(Image.fromarray(arr), side), whole[:, :, ::-1].astype(np.float32))


def test_image_from_comfy_array_rounds_and_keeps_alpha():
    arr = np.zeros((2, 2, 4), dtype=np.float32)
    arr[..., :3] = 0.5
    arr[..., 3] = 0.0
    img = image_from_array(arr)
    assert img.mode == "RGBA" and img.getpixel((0, 0)) == (128, 128, 128, 0)
    assert preprocess_image(img, 2)[0, 0].tolist() == [255.0] * 3
    with pytest.raises(ValueError, match="HWC"):
        image_from_array(np.zeros((1, 2, 2, 3)))


def test_load_image_applies_exif_orientation(tmp_path):
    img = Image.new("RGB", (4, 2), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (2, 4)


def test_composite_skips_images_without_alpha_and_keeps_transparency_rules():
    from PIL import Image

    from hypernet.tagger.preprocess import composite_on_white

    rgb = Image.new("RGB", (4, 4), (10, 20, 30))
    assert composite_on_white(rgb) is rgb, "an opaque RGB image needs no copy"
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert composite_on_white(clear).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert composite_on_white(palette).getpixel((0, 0)) == (255, 255, 255)
