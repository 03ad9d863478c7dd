"""Preprocess with an output folder: names, captions, atomicity, determinism, folder policy."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from hypernet.data.dataset import load_item_image
from hypernet.data.load import load_dataset
from hypernet.preprocess.config import PreprocessConfig
from hypernet.preprocess.output import MANIFEST_NAME
from hypernet.preprocess.pipeline import preprocess
from tests.support.images import build_mode_zoo, pattern_rgb, tree_hashes


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("src")  # read-only for every test (checked by hashes)
    build_mode_zoo(folder)
    pattern_rgb(3000, 200).save(folder / "wide.png")
    (folder / "odd.txt").write_text("odd one")
    return folder


def _cfg(out, **kw):
    base = dict(width=64, height=64, split_oversized=True, flip=True, output_directory=str(out))
    base.update(kw)
    return PreprocessConfig(**base)


def _files(folder):
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))
            if not n.startswith(".") and (folder / n).is_file()}


def test_written_names_captions_and_items(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    out = tmp_path / "out"
    result = preprocess(ds, _cfg(out, existing_caption="existing_first", caption_text="style"))
    names = sorted(os.listdir(out))
    odd_index = [os.path.basename(i.path) for i in ds].index("odd.png")
    assert f"{odd_index:05d}-0-odd.png" in names and f"{odd_index:05d}-1-odd.png" in names
    assert (out / f"{odd_index:05d}-0-odd.txt").read_text(encoding="utf-8") == "odd one style"
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == len(result.dataset)
    for item in result.dataset:
        assert os.path.dirname(item.path) == str(out) and item.transforms == ()
        with Image.open(item.path) as img:
            assert img.size == item.size == (64, 64) and img.mode == "RGB"
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["complete"] and sorted(manifest["files"]) == [n for n in names if n != MANIFEST_NAME]
    assert not [n for n in names if n.endswith(".tmp")]


def test_no_caption_file_when_caption_empty(tmp_path):
    pattern_rgb(64, 64).save(tmp_path / "a.png")
    ds = load_dataset(str(tmp_path)).dataset
    preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "o")))
    assert sorted(os.listdir(tmp_path / "o")) == [MANIFEST_NAME, "00000-0-a.png"]


def test_written_pixels_equal_lazy_items(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    lazy = preprocess(ds, _cfg("", focal_crop=True)).dataset
    written = preprocess(ds, _cfg(tmp_path / "out", focal_crop=True)).dataset
    assert len(lazy) == len(written)
    for a, b in zip(lazy, written):
        assert a.size == b.size and a.caption == b.caption
        assert np.array_equal(np.asarray(load_item_image(a)), np.asarray(load_item_image(b)))


def test_byte_identical_reruns_and_workers(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    one = preprocess(ds, _cfg(tmp_path / "w1", focal_crop=True, workers=1))
    two = preprocess(ds, _cfg(tmp_path / "w2", focal_crop=True, workers=2))
    again = preprocess(ds, _cfg(tmp_path / "w1b", focal_crop=True, workers=3))
    f1, f2, f3 = _files(tmp_path / "w1"), _files(tmp_path / "w2"), _files(tmp_path / "w1b")
    assert f1 == f2 == f3 and len(f1) > 20
    assert [os.path.basename(i.path) for i in one.dataset] == [os.path.basename(i.path) for i in two.dataset]
    assert again.stats == one.stats


def test_sources_never_modified(source, tmp_path):
    before = tree_hashes(source)
    ds = load_dataset(str(source)).dataset
    preprocess(ds, _cfg(tmp_path / "out", focal_crop=True, auto_size=True, workers=2))
    preprocess(ds, _cfg("", mode="buckets", bucket_min=64, bucket_max=256, bucket_step=8))
    assert tree_hashes(source) == before


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_leaves_no_temp_files(source, tmp_path, workers):
    ds = load_dataset(str(source)).dataset
    polls = {"n": 0}

    def should_cancel():
        polls["n"] += 1
        return polls["n"] > 3

    out = tmp_path / "out"
    result = preprocess(ds, _cfg(out, workers=workers), should_cancel=should_cancel)
    assert result.cancelled and "CANCELLED" in result.report
    assert 0 < result.stats["processed"] < len(ds)
    names = os.listdir(out)
    assert not [n for n in names if n.endswith(".tmp") or (n.startswith(".") and n != MANIFEST_NAME)]
    assert not json.loads((out / MANIFEST_NAME).read_text())["complete"]
    for item in result.dataset:  # every listed output is complete and readable
        assert load_item_image(item).size == (64, 64)
    assert len([n for n in names if n.endswith(".png")]) == len(result.dataset)


def test_failure_while_writing_leaves_no_temp_file(source, tmp_path, monkeypatch):
    ds = load_dataset(str(source)).dataset
    real_save = Image.Image.save
    calls = {"n": 0}

    def flaky_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            fp.write(b"partial")
            raise OSError("disk full")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        preprocess(ds, _cfg(out, flip=False, split_oversized=False))
    names = os.listdir(out)
    assert not [n for n in names if n.endswith(".tmp")]
    assert len([n for n in names if n.endswith(".png")]) == 2
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert not manifest["complete"] and "disk full" in manifest["error"]


def test_output_folder_policies(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    out = tmp_path / "out"
    first = preprocess(ds, _cfg(out, split_oversized=False, flip=False))
    first_files = _files(out)
    with pytest.raises(ValueError, match="already holds"):
        preprocess(ds, _cfg(out, if_output_exists="refuse"))
    assert _files(out) == first_files
    over = preprocess(ds, _cfg(out, if_output_exists="overwrite", flip=False))
    assert "overwrote" in over.report
    names = [n for n in os.listdir(out) if n.endswith(".png")]
    assert len(names) == len(over.dataset) != len(first.dataset)  # split tiles now, none before
    after_overwrite = _files(out)
    fresh = preprocess(ds, _cfg(out, if_output_exists="new_subfolder"))
    assert fresh.output_directory == str(out / "run-0001") and "fresh subfolder" in fresh.report
    assert _files(out) == after_overwrite  # nothing mixed into the old run
    assert all(os.path.dirname(i.path) == str(out / "run-0001") for i in fresh.dataset)
    sub_files = _files(out / "run-0001")
    again = preprocess(ds, _cfg(out, if_output_exists="overwrite"))  # a subfolder is not ours to delete
    assert "kept 1 file(s) it did not write: run-0001" in again.report
    assert sub_files and _files(out / "run-0001") == sub_files


def test_overwrite_keeps_foreign_files_and_says_so(source, tmp_path):
    ds = load_dataset(str(source)).dataset
    out = tmp_path / "out"
    out.mkdir()
    (out / "my_notes.txt").write_text("keep me")
    result = preprocess(ds, _cfg(out, if_output_exists="overwrite"))
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert "kept 1 file(s) it did not write: my_notes.txt" in result.report


def test_overwrite_removes_only_files_in_its_manifest(source, tmp_path):
    """A file that merely looks like an output (no manifest lists it) is never deleted or replaced."""
    ds = load_dataset(str(source)).dataset
    out = tmp_path / "out"
    out.mkdir()
    lookalike = out / "00007-0-lookalike.png"
    lookalike.write_bytes(b"the user's own file")
    result = preprocess(ds, _cfg(out, if_output_exists="overwrite"))
    assert lookalike.read_bytes() == b"the user's own file"
    assert "00007-0-lookalike.png" in result.report
    first_output = sorted(n for n in os.listdir(out) if n.startswith("00000-0-"))[0]
    (out / MANIFEST_NAME).unlink()  # a folder of outputs whose manifest is gone: nothing is provably ours
    collision = out / first_output
    collision.write_bytes(b"same name as an output")
    with pytest.raises(ValueError, match=first_output):
        preprocess(ds, _cfg(out, if_output_exists="overwrite"))
    assert collision.read_bytes() == b"same name as an output"


def test_output_equal_to_source_refused(source):
    ds = load_dataset(str(source)).dataset
    with pytest.raises(ValueError, match="dataset folder"):
        preprocess(ds, _cfg(source))


def test_overwrite_refuses_when_sources_inside(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pattern_rgb(64, 64).save(out / "00000-0-x.png")  # looks like an output, but is a source
    ds = load_dataset(str(out)).dataset
    ds.root = str(tmp_path)
    with pytest.raises(ValueError, match="source"):
        preprocess(ds, _cfg(out, if_output_exists="overwrite"))
    assert (out / "00000-0-x.png").exists()
