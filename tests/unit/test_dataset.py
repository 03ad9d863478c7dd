"""LoadDataset core: scanning, captions, repeats, bad-file catalogue, record round trip."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hypernet.data.captions_io import caption_from_filename, compile_word_regex, decode_caption_bytes
from hypernet.data.dataset import Dataset, DatasetItem, Transform, load_item_image
from hypernet.data.load import load_dataset
from hypernet.data.preview import preview_tensor
from tests.support.images import build_bad_files, build_mode_zoo, pattern_rgb, tree_hashes


def _png(path, w=16, h=12, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern_rgb(w, h, seed).save(path)


def test_loads_every_mode_with_header_sizes(tmp_path):
    expected = build_mode_zoo(tmp_path)
    result = load_dataset(str(tmp_path))
    got = {os.path.basename(i.path): (i.width, i.height) for i in result.dataset}
    assert got == expected
    assert result.stats["images"] == len(expected)
    assert not result.bad_files


def test_order_is_sorted_and_deterministic(tmp_path):
    for name in ("b.png", "a.png", "c.png"):
        _png(tmp_path / name)
    names = [os.path.basename(i.path) for i in load_dataset(str(tmp_path)).dataset]
    assert names == ["a.png", "b.png", "c.png"]


def test_bad_file_catalogue_and_counts(tmp_path):
    _png(tmp_path / "good.png")
    expected = build_bad_files(tmp_path)
    result = load_dataset(str(tmp_path))
    assert [os.path.basename(i.path) for i in result.dataset] == ["good.png"]
    got = {os.path.basename(b.path): b.reason for b in result.bad_files}
    assert got == expected
    assert result.stats["skipped"] == 5
    assert result.stats["skipped_truncated"] == 2
    assert result.stats["skipped_zero_byte"] == 1
    assert result.stats["skipped_too_large"] == 1
    assert result.stats["skipped_corrupt"] == 1
    for name in expected:
        assert name in result.report
    assert "truncated image data: 2" in result.report


def test_on_bad_file_fail_names_the_file(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "zz_zero.png").write_bytes(b"")
    with pytest.raises(ValueError, match="zz_zero.png"):
        load_dataset(str(tmp_path), on_bad_file="fail")


def test_missing_and_empty_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="empty"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="absolute"):
        load_dataset("relative/dir")
    (tmp_path / "allbad").mkdir()
    (tmp_path / "allbad" / "z.png").write_bytes(b"")
    with pytest.raises(ValueError, match="z.png"):
        load_dataset(str(tmp_path / "allbad"))


def test_empty_dir_hint_mentions_recursive(tmp_path):
    _png(tmp_path / "sub" / "a.png")
    with pytest.raises(ValueError, match="recursive"):
        load_dataset(str(tmp_path))
    assert len(load_dataset(str(tmp_path), recursive=True).dataset) == 1


def test_captions_utf8_bom_fallback_missing(tmp_path):
    for stem in ("a", "b", "c", "d", "e"):
        _png(tmp_path / f"{stem}.png")
    (tmp_path / "a.txt").write_text("plain caption\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfbom caption")
    (tmp_path / "c.txt").write_bytes("café, naïve".encode("cp1252"))
    (tmp_path / "d.txt").write_bytes(b"")
    result = load_dataset(str(tmp_path))
    caps = {os.path.basename(i.path): i.caption for i in result.dataset}
    assert caps == {"a.png": "plain caption", "b.png": "bom caption", "c.png": "café, naïve",
                    "d.png": "", "e.png": ""}
    assert result.stats["captions_from_file"] == 4
    assert result.stats["captions_missing"] == 1
    assert result.stats["captions_empty_file"] == 1
    assert result.stats["captions_fallback_encoding"] == 1
    assert "c.txt" in result.report and "cp1252" in result.report


def test_caption_extension_and_filename_fallback(tmp_path):
    _png(tmp_path / "00012-0-a red fox.png")
    _png(tmp_path / "cat.png")
    (tmp_path / "cat.caption").write_text("from caption file")
    (tmp_path / "cat.txt").write_text("wrong file")
    result = load_dataset(str(tmp_path), caption_extension=".caption", missing_caption="filename")
    caps = {os.path.basename(i.path): i.caption for i in result.dataset}
    assert caps == {"00012-0-a red fox.png": "a red fox", "cat.png": "from caption file"}
    assert result.stats["captions_from_filename"] == 1
    with pytest.raises(ValueError, match="caption_extension"):
        load_dataset(str(tmp_path), caption_extension="txt")


def test_filename_caption_regex():
    assert caption_from_filename("123-4 blue sky") == "blue sky"
    assert caption_from_filename("1-2-a_b_c", compile_word_regex(r"[a-z]+"), ", ") == "a, b, c"
    with pytest.raises(ValueError, match="filename_word_regex"):
        compile_word_regex("(")


def test_decode_caption_utf16_and_latin1():
    assert decode_caption_bytes("hi ü".encode("utf-16")).text == "hi ü"
    result = decode_caption_bytes(b"x\x81y")  # 0x81 is undefined in cp1252
    assert result.fallback and result.encoding == "latin-1" and result.text == "x\x81y"


def test_repeats_from_kohya_folders(tmp_path):
    _png(tmp_path / "10_cat" / "a.png")
    _png(tmp_path / "3_dog" / "deep" / "b.png")
    _png(tmp_path / "plain" / "c.png")
    _png(tmp_path / "root.png")
    flat = load_dataset(str(tmp_path), repeats_from_folder_names=True)
    reps = {os.path.basename(i.path): i.repeats for i in flat.dataset}
    assert reps == {"root.png": 1, "a.png": 10, "c.png": 1}  # one level, as kohya
    deep = load_dataset(str(tmp_path), repeats_from_folder_names=True, recursive=True)
    reps = {os.path.basename(i.path): i.repeats for i in deep.dataset}
    assert reps == {"root.png": 1, "a.png": 10, "b.png": 3, "c.png": 1}
    assert "10_cat" in deep.report
    off = load_dataset(str(tmp_path), recursive=True)
    assert all(i.repeats == 1 for i in off.dataset)


def test_hidden_and_non_image_files_ignored(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / ".hidden.png")
    (tmp_path / "notes.json").write_text("{}")
    result = load_dataset(str(tmp_path))
    assert len(result.dataset) == 1
    assert result.stats["other_files"] == 1 and result.stats["hidden_entries"] == 1


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_escaping_the_folder_is_reported(tmp_path):
    _png(tmp_path / "outside" / "secret.png")
    _png(tmp_path / "ds" / "a.png")
    try:
        os.symlink(tmp_path / "outside" / "secret.png", tmp_path / "ds" / "link.png")
    except OSError:
        pytest.skip("symlinks not permitted")
    result = load_dataset(str(tmp_path / "ds"))
    assert [b.reason for b in result.bad_files] == ["outside_folder"]


def test_sources_unchanged(tmp_path):
    build_mode_zoo(tmp_path)
    (tmp_path / "odd.txt").write_text("cap")
    before = tree_hashes(tmp_path)
    result = load_dataset(str(tmp_path))
    for item in result.dataset:
        load_item_image(item)
    preview_tensor(result.dataset, 4)
    assert tree_hashes(tmp_path) == before


def test_progress_and_cancel(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png")
    calls = []
    load_dataset(str(tmp_path), progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    result = load_dataset(str(tmp_path), should_cancel=lambda: True)
    assert result.cancelled and len(result.dataset) == 0
    assert "CANCELLED" in result.report


def test_dataset_round_trip_json(tmp_path):
    _png(tmp_path / "a.png", 40, 20)
    dataset = load_dataset(str(tmp_path)).dataset
    flipped = Transform((5.5, 0.0, 25.5, 20.0), (16, 16), flip=True)
    padded = Transform((0.0, 0.0, 40.0, 20.0), (32, 16), canvas=(32, 32), offset=(0, 8),
                       fill=(1, 2, 3))
    dataset.items.append(DatasetItem(dataset[0].path, 40, 20, "c", 2, (flipped, padded)))
    data = json.loads(json.dumps(dataset.to_dict()))
    again = Dataset.from_dict(data)
    assert again.items == dataset.items and again.root == dataset.root
    assert again[1].size == (32, 32)
    with pytest.raises(ValueError, match="hn_dataset"):
        Dataset.from_dict({"items": []})
    bad = dict(data, items=[{"path": "rel.png", "width": 1, "height": 1}])
    with pytest.raises(ValueError, match="absolute"):
        Dataset.from_dict(bad)


def test_load_item_image_applies_transforms(tmp_path):
    _png(tmp_path / "a.png", 40, 20)
    item = load_dataset(str(tmp_path)).dataset[0]
    source = np.asarray(pattern_rgb(40, 20))
    crop = DatasetItem(item.path, 40, 20, transforms=(Transform((10, 2, 30, 18), (20, 16)),))
    assert np.array_equal(np.asarray(load_item_image(crop)), source[2:18, 10:30])
    flip = DatasetItem(item.path, 40, 20, transforms=(Transform((0, 0, 40, 20), (40, 20), flip=True),))
    assert np.array_equal(np.asarray(load_item_image(flip)), source[:, ::-1])
    fit = DatasetItem(item.path, 40, 20, transforms=(
        Transform((0, 0, 40, 20), (40, 20), canvas=(40, 40), offset=(0, 10), fill=(9, 9, 9)),))
    out = np.asarray(load_item_image(fit))
    assert out.shape == (40, 40, 3) and (out[:10] == 9).all() and np.array_equal(out[10:30], source)
    stale = DatasetItem(item.path, 41, 20)
    with pytest.raises(ValueError, match="changed"):
        load_item_image(stale)


def test_group_by_size():
    items = [DatasetItem("/a.png", 64, 32), DatasetItem("/b.png", 32, 64), DatasetItem("/c.png", 64, 32),
             DatasetItem("/d.png", 99, 99, transforms=(Transform((0, 0, 99, 99), (32, 64)),))]
    groups = Dataset(items, "/").group_by_size()
    assert groups == {(32, 64): [1, 3], (64, 32): [0, 2]}


def test_preview_tensor_shapes(tmp_path):
    _png(tmp_path / "a.png", 40, 20)
    _png(tmp_path / "b.png", 10, 30)
    dataset = load_dataset(str(tmp_path)).dataset
    t = preview_tensor(dataset, 5)
    assert tuple(t.shape) == (2, 30, 40, 3)
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert tuple(preview_tensor(dataset, 0).shape) == (1, 64, 64, 3)
