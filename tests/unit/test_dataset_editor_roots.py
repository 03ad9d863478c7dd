"""Which folders the dataset editor may open (roots from config and environment), and thumbnails."""
from __future__ import annotations

import io
import json
import os

import pytest
from PIL import Image

from hypernet.data.images import BadImageError
from hypernet.data.roots import ENV_ROOTS, FolderRefused, configured_roots, resolve_folder
from hypernet.data.thumbs import thumbnail_jpeg
from hypernet.util.paths import user_folder


@pytest.fixture
def layout(tmp_path):
    base = tmp_path / "input"
    (base / "ds" / "sub").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (base / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    return base, tmp_path


def test_relative_and_absolute_folders_inside_roots(layout):
    base, _ = layout
    assert resolve_folder("ds", [base], base) == base / "ds"
    assert resolve_folder(str(base / "ds" / "sub"), [base], base) == base / "ds" / "sub"
    assert resolve_folder(" ds/sub ", [base], base) == base / "ds" / "sub"


@pytest.mark.parametrize("text, status", [
    ("", 400), (None, 400), (3, 400), ("ds\x00", 400), ("%2e%2e", 400), ("ds%2F..", 400), ("%252e", 400),
    ("..", 403), ("ds/../..", 403), ("/", 403), ("escape", 403), ("missing", 404),
])
def test_refused_folders(layout, text, status):
    base, _ = layout
    with pytest.raises(FolderRefused) as info:
        resolve_folder(text, [base], base)
    assert info.value.status == status and str(info.value)


def test_absolute_outside_needs_a_configured_root(layout):
    base, tmp = layout
    with pytest.raises(FolderRefused, match="hypernetwork_datasets.json"):
        resolve_folder(str(tmp / "secret"), [base], base)
    config = tmp / "hypernetwork_datasets.json"
    config.write_text(json.dumps({"dataset_roots": [str(tmp / "secret"), "relative/ignored"]}))
    roots, warnings = configured_roots(config, {ENV_ROOTS: os.pathsep.join([str(tmp / "env_root"), ""])})
    assert roots == [tmp / "env_root", tmp / "secret"]
    assert len(warnings) == 1 and "relative/ignored" in warnings[0]
    assert resolve_folder(str(tmp / "secret"), [base, *roots], base) == tmp / "secret"


def test_a_broken_config_is_a_warning_not_a_crash(tmp_path):
    config = tmp_path / "hypernetwork_datasets.json"
    config.write_text("{oops")
    roots, warnings = configured_roots(config, {})
    assert roots == [] and "dataset_roots" in warnings[0]
    assert configured_roots(tmp_path / "absent.json", {}) == ([], [])


def test_thumbnail_is_oriented_and_small(tmp_path):
    path = tmp_path / "tall.jpg"
    img = Image.new("RGB", (400, 200), (250, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: shown as 200x400
    img.save(path, exif=exif)
    with Image.open(io.BytesIO(thumbnail_jpeg(str(path), 128))) as thumb:
        assert thumb.size == (64, 128) and thumb.format == "JPEG"
    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(rgba)
    with Image.open(io.BytesIO(thumbnail_jpeg(str(rgba), 64))) as thumb:
        assert thumb.getpixel((5, 5))[0] > 240, "transparency is shown on white"


def test_thumbnail_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(BadImageError):
        thumbnail_jpeg(str(bad), 64)
    with pytest.raises(ValueError, match="size"):
        thumbnail_jpeg(str(bad), 100)


def test_home_folders_resolve_as_load_dataset_reads_them(layout, monkeypatch):
    base, tmp = layout
    monkeypatch.setenv("HOME", str(tmp))
    (tmp / "mine").mkdir()
    assert resolve_folder("~/mine", [base, tmp], base) == tmp / "mine"
    assert user_folder("~/mine", base) == tmp / "mine"
    assert user_folder(" ds ", base) == base / "ds"
    with pytest.raises(FolderRefused) as info:
        resolve_folder("~/mine", [base], base)
    assert info.value.status == 403, "a home folder is still checked against the allowed folders"
    roots, warnings = configured_roots(None, {ENV_ROOTS: "~/mine"})
    assert roots == [tmp / "mine"] and not warnings
