"""Caption file modes: off / overwrite / append / prepend / only_missing, dedupe and atomicity."""
from __future__ import annotations

import os

import pytest

from hypernet.tagger import captions as tagger_captions
from hypernet.tagger.captions import caption_path_for, merge_caption, write_caption


def test_caption_path_next_to_image(tmp_path):
    assert caption_path_for(tmp_path / "a.b.png") == tmp_path / "a.b.txt"
    assert caption_path_for(tmp_path / "x.jpg", ".caption") == tmp_path / "x.caption"


@pytest.mark.parametrize("ext", ["txt", ".", "../x", ".a/b", ".PNG", ""])
def test_bad_caption_extension(tmp_path, ext):
    with pytest.raises(ValueError, match="caption_extension"):
        caption_path_for(tmp_path / "x.png", ext)


def test_merge_dedupes_existing_first_and_new_first():
    old = "long hair, smile,  1girl"
    new = ["1girl", "long_hair", "solo"]
    assert merge_caption(old, new, "existing_first") == "long hair, smile, 1girl, solo"
    assert merge_caption(old, new, "new_first") == "1girl, long_hair, solo, smile"
    assert merge_caption(old, new, "overwrite") == "1girl, long_hair, solo"


@pytest.mark.parametrize(
    "mode, existing, expected, action",
    [
        ("off", None, None, "off"),
        ("off", "old", "old", "off"),
        ("overwrite", None, "a, b", "written"),
        ("overwrite", "old", "a, b", "overwritten"),
        ("existing_first", "old, a", "old, a, b", "merged"),
        ("existing_first", None, "a, b", "written"),
        ("new_first", "old, b", "a, b, old", "merged"),
        ("append", "old, a", "old, a, b", "merged"),  # the names before the rename, from saved workflows
        ("prepend", "old, b", "a, b, old", "merged"),
        ("only_missing", "old", "old", "kept_existing"),
        ("only_missing", None, "a, b", "written"),
    ],
)
def test_write_modes(tmp_path, mode, existing, expected, action):
    image = tmp_path / "img.png"
    image.write_bytes(b"not really a png")
    cap = tmp_path / "img.txt"
    if existing is not None:
        cap.write_text(existing, encoding="utf-8")
    path, did = write_caption(image, ["a", "b"], mode)
    assert (path, did) == (cap, action)
    if expected is None:
        assert not cap.exists()
    else:
        assert cap.read_text(encoding="utf-8") == expected
    assert image.read_bytes() == b"not really a png"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"img.png"} | ({"img.txt"} if expected else set()))


def test_write_goes_through_atomic_helper(tmp_path, monkeypatch):
    calls = []
    real = tagger_captions.atomic_write_text
    monkeypatch.setattr(tagger_captions, "atomic_write_text", lambda p, t: calls.append(p) or real(p, t))
    write_caption(tmp_path / "i.png", ["x"], "overwrite")
    assert calls == [tmp_path / "i.txt"]


def test_failed_write_keeps_old_caption(tmp_path, monkeypatch):
    cap = tmp_path / "i.txt"
    cap.write_text("precious", encoding="utf-8")

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", lambda *a, **k: boom(None))
    with pytest.raises(OSError):
        write_caption(tmp_path / "i.png", ["x"], "overwrite")
    assert cap.read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.txt"]


def test_non_utf8_existing_caption_is_named_error(tmp_path):
    (tmp_path / "i.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="i.txt"):
        write_caption(tmp_path / "i.png", ["x"], "append")


def test_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="write_captions"):
        write_caption(tmp_path / "i.png", ["x"], "ignore")
