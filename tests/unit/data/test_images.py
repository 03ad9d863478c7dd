"""Decoding and normalisation of every supported image mode; header reads that never decode."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from hypernet.data.images import BadImageError, load_rgb, read_header, to_rgb
from tests.support.images import (MODE_FILES, build_bad_files, build_mode_zoo, exif_rotated_jpeg,
                                  mode_image, pattern_rgb)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return folder, build_mode_zoo(folder)


@pytest.mark.parametrize("name", sorted(MODE_FILES))
def test_every_format_and_mode_loads_as_rgb_with_header_size(zoo, name):
    folder, expected = zoo
    header = read_header(str(folder / name))
    assert (header.width, header.height) == expected[name]
    img = load_rgb(str(folder / name))
    assert img.mode == "RGB"
    assert img.size == expected[name]


def test_alpha_is_composited_on_white(zoo):
    folder, _ = zoo
    for name in ("rgba.png", "la.png"):
        arr = np.asarray(load_rgb(str(folder / name)))
        assert (arr[:, -3:] == 255).all(), name  # transparent right half -> white
        assert (arr[:, :3] < 250).any(), name  # opaque left half keeps its colours


def test_16bit_grayscale_is_scaled_not_clipped(zoo):
    folder, _ = zoo
    expected = np.asarray(mode_image("L"))
    got = np.asarray(load_rgb(str(folder / "gray16.png")))[..., 0]
    assert np.array_equal(got, expected)  # PIL's plain convert would clip everything to 255
    assert got.min() < 200


def test_float_mode_is_scaled():
    arr = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = np.asarray(to_rgb(Image.fromarray(arr, "F")))[..., 0]
    assert out[0, 0] == 0 and out[-1, -1] == 255


def test_palette_with_transparency_composited(tmp_path):
    img = Image.new("P", (4, 2), 0)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    img.save(tmp_path / "t.png", transparency=0)
    arr = np.asarray(load_rgb(str(tmp_path / "t.png")))
    assert tuple(arr[0, 0]) == (10, 20, 30)
    assert tuple(arr[1, 1]) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path):
    exif_rotated_jpeg(tmp_path / "r.jpg", 40, 20, orientation=6)
    plain = Image.open(tmp_path / "r.jpg").convert("RGB")
    img = load_rgb(str(tmp_path / "r.jpg"))
    assert img.size == (20, 40)
    expected = np.asarray(plain.transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
    assert np.abs(np.asarray(img, dtype=np.int16) - expected).max() == 0


def test_gif_first_frame(zoo):
    folder, _ = zoo
    arr = np.asarray(load_rgb(str(folder / "anim.gif")))
    assert tuple(arr[0, 0]) == (255, 0, 0)


def test_cmyk_converted(zoo):
    folder, _ = zoo
    arr = np.asarray(load_rgb(str(folder / "cmyk.jpg")), dtype=np.int16)
    ref = np.asarray(pattern_rgb(24, 16), dtype=np.int16)
    assert np.abs(arr - ref).mean() < 40  # lossy JPEG + CMYK round trip, same picture


def test_header_read_never_decodes_pixels(zoo, monkeypatch):
    folder, expected = zoo
    def boom(self):
        raise AssertionError("pixels decoded during scan")
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    for name in ("odd.png", "rotated.jpg", "photo.webp", "scan.tiff", "anim.gif"):
        header = read_header(str(folder / name))
        assert (header.width, header.height) == expected[name]


def test_bad_files_classified(tmp_path):
    expected = build_bad_files(tmp_path)
    for name, reason in expected.items():
        with pytest.raises(BadImageError) as info:
            read_header(str(tmp_path / name))
        assert info.value.reason == reason, name
        assert name in str(info.value)


def test_truncated_file_fails_on_load_too(tmp_path):
    build_bad_files(tmp_path)
    with pytest.raises(BadImageError) as info:
        load_rgb(str(tmp_path / "cut.png"))
    assert info.value.reason == "truncated"


def test_max_pixels_limit(tmp_path):
    pattern_rgb(40, 30).save(tmp_path / "a.png")
    with pytest.raises(BadImageError) as info:
        read_header(str(tmp_path / "a.png"), max_pixels=1000)
    assert info.value.reason == "too_large"
    with pytest.raises(BadImageError):
        load_rgb(str(tmp_path / "a.png"), max_pixels=1000)


def test_full_verify_catches_damage_inside_the_file(tmp_path):
    pattern_rgb(64, 64, seed=5).save(tmp_path / "good.png")
    data = bytearray((tmp_path / "good.png").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 40] = b"\x00" * 40  # damage inside IDAT; IEND still present
    (tmp_path / "bad.png").write_bytes(bytes(data))
    read_header(str(tmp_path / "bad.png"), verify="fast")  # tail looks fine: not detected
    with pytest.raises(BadImageError):
        read_header(str(tmp_path / "bad.png"), verify="full")


def test_jpeg_with_trailing_data_is_not_called_truncated(tmp_path):
    pattern_rgb(32, 32).save(tmp_path / "m.jpg", quality=90)
    with open(tmp_path / "m.jpg", "ab") as fh:
        fh.write(b"\x01" * 4096)  # e.g. a motion-photo trailer after the JPEG end marker
    header = read_header(str(tmp_path / "m.jpg"))
    assert (header.width, header.height) == (32, 32)


def test_png_orientation_sources_agree_between_scan_and_load(tmp_path):
    from PIL import PngImagePlugin
    img = pattern_rgb(40, 20)
    exif = Image.Exif()
    exif[274] = 6
    img.save(tmp_path / "exif.png", exif=exif.tobytes())
    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>')
    img.save(tmp_path / "xmp.png", pnginfo=info)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a1111 prompt text, Steps: 20")
    img.save(tmp_path / "text.png", pnginfo=info)
    expected = {"exif.png": (20, 40), "xmp.png": (20, 40), "text.png": (40, 20)}
    for name, size in expected.items():
        header = read_header(str(tmp_path / name))
        assert (header.width, header.height) == size, name
        assert load_rgb(str(tmp_path / name)).size == size, name
    rotated = np.asarray(load_rgb(str(tmp_path / "exif.png")))
    assert np.array_equal(rotated, np.asarray(img.transpose(Image.Transpose.ROTATE_270)))


def test_fast_png_path_agrees_with_pil(zoo):
    from hypernet.data.images_png import png_size_fast
    folder, expected = zoo
    for name in ("palette.png", "gray.png", "gray16.png", "rgba.png", "la.png", "odd.png"):
        with open(folder / name, "rb") as fh:
            assert png_size_fast(fh) == expected[name], name
    with open(folder / "rotated.jpg", "rb") as fh:
        assert png_size_fast(fh) is None
