"""End to end on the fake ONNX tagger: crafted images trigger known tags, batching, captions, bad files."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hypernet.tagger.pipeline import (
    TagOptions,
    count_tags,
    find_image_files,
    tag_image_files,
    tag_images,
)
from tests.support.fake_tagger import SIZE, image_for, loaded_fake_tagger

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="needs onnxruntime and onnx",
)

SCENE = {"1girl": 0.9, "long_hair": 0.6, "hatsune_miku": 0.95, "c.c.": 0.7, "smile": 0.2, "sensitive": 0.8}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    yield from loaded_fake_tagger(tmp_path_factory.mktemp("models"))


def test_crafted_image_triggers_expected_tags(model):
    [result] = tag_images(model, [image_for(SCENE)], TagOptions(include_rating=True))
    assert result.ok
    assert result.tags == ["sensitive", "hatsune miku", "1girl", "long hair"]
    assert result.confidences["1girl"] == pytest.approx(0.9, abs=0.02)
    assert result.rating == "sensitive"


def test_white_image_has_no_tags(model):
    [result] = tag_images(model, [Image.new("RGB", (50, 20), "white")])
    assert result.ok and result.tags == []


def test_resize_pad_and_alpha_follow_the_reference(model):
    base = image_for(SCENE)
    expected = tag_images(model, [base])[0].tags
    bigger = base.resize((SIZE * 3, SIZE * 3), Image.NEAREST)  # area downscale by 3 restores region means
    assert tag_images(model, [bigger])[0].tags == expected
    # transparent pixels that store black must read as white (alpha over white), so no tags fire
    ghost = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    assert tag_images(model, [ghost])[0].tags == []
    # ComfyUI IMAGE layout (HWC float 0..1) gives the same tags as the PIL image
    arr = np.asarray(base, dtype=np.float32) / 255.0
    assert tag_images(model, [arr])[0].tags == expected


def _images():
    return [
        image_for(SCENE),
        image_for({"smile": 0.5, "blue_sky": 0.9, "^_^": 0.7}),
        image_for({"rem_(re:zero)": 0.99, "hat_(object)": 0.4}).resize((70, 45)),
        Image.new("RGBA", (10, 40), (0, 0, 0, 255)),
        image_for({"solo": 0.36, "open_mouth": 0.34}),
    ]


@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_batched_equals_one_by_one(model, batch_size):
    single = tag_images(model, _images(), batch_size=1)
    batched = tag_images(model, _images(), batch_size=batch_size)
    assert [r.tags for r in batched] == [r.tags for r in single]
    for a, b in zip(batched, single):
        assert a.confidences.keys() == b.confidences.keys()
        assert np.allclose(list(a.confidences.values()), list(b.confidences.values()), atol=1e-6)
    assert any(r.tags for r in single)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dataset(tmp_path):
    image_for(SCENE).save(tmp_path / "a.png")
    image_for({"smile": 0.9}).save(tmp_path / "b.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    buf = (tmp_path / "a.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(buf[: len(buf) // 2])
    (tmp_path / "b.txt").write_text("smile, handwritten", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "mode, b_caption",
    [
        ("off", "smile, handwritten"),
        ("overwrite", "smile"),
        ("existing_first", "smile, handwritten"),
        ("new_first", "smile, handwritten"),
        ("only_missing", "smile, handwritten"),
    ],
)
def test_caption_modes_on_a_folder(model, dataset, mode, b_caption):
    paths = find_image_files(dataset)
    assert [p.name for p in paths] == ["a.png", "b.png", "broken.png", "truncated.png"]
    before = {p.name: sha(p) for p in paths}
    seen = []
    results = tag_image_files(model, paths, TagOptions(), batch_size=3, write_captions=mode,
                              progress=lambda done, total: seen.append((done, total)))
    assert {p.name: sha(p) for p in paths} == before  # sources never touched
    assert seen == [(3, 4), (4, 4)]
    by_name = {Path(r.source).name: r for r in results}
    assert not by_name["broken.png"].ok and "cannot read image" in by_name["broken.png"].error
    assert not by_name["truncated.png"].ok
    assert by_name["a.png"].tags == ["hatsune miku", "1girl", "long hair"]
    assert (dataset / "b.txt").read_text(encoding="utf-8") == b_caption
    if mode == "off":
        assert not (dataset / "a.txt").exists()
    else:
        assert (dataset / "a.txt").read_text(encoding="utf-8") == "hatsune miku, 1girl, long hair"
    assert not (dataset / "broken.txt").exists() and not (dataset / "truncated.txt").exists()
    assert not [p for p in dataset.iterdir() if p.name.startswith(".")]  # no temp files left


def test_append_dedupes_against_existing_caption(model, dataset):
    (dataset / "a.txt").write_text("1girl, masterpiece", encoding="utf-8")
    tag_image_files(model, [dataset / "a.png"], write_captions="existing_first")
    assert (dataset / "a.txt").read_text(encoding="utf-8") == "1girl, masterpiece, hatsune miku, long hair"
    tag_image_files(model, [dataset / "a.png"], write_captions="new_first")
    assert (dataset / "a.txt").read_text(encoding="utf-8") == "hatsune miku, 1girl, long hair, masterpiece"


def test_unwritable_caption_is_reported_not_fatal(model, dataset):
    (dataset / "a.txt").write_bytes(b"\xff\xfe not utf-8")
    results = tag_image_files(model, [dataset / "a.png", dataset / "b.png"], write_captions="existing_first")
    assert results[0].caption_action == "error" and "a.txt" in results[0].error
    assert results[0].tags  # the tags are still returned
    assert results[1].ok and results[1].caption_action == "merged"
    assert (dataset / "a.txt").read_bytes() == b"\xff\xfe not utf-8"


def test_bad_batch_size_and_mode(model, dataset):
    with pytest.raises(ValueError, match="batch_size"):
        tag_images(model, [image_for({})], batch_size=0)
    with pytest.raises(ValueError, match="write_captions"):
        tag_image_files(model, [dataset / "a.png"], write_captions="copy")
    with pytest.raises(ValueError, match="caption_extension"):
        tag_image_files(model, [dataset / "a.png"], write_captions="overwrite", caption_extension=".png")
    assert not (dataset / "a.txt").exists()


def test_count_tags_and_recursive_listing(model, dataset):
    sub = dataset / "sub"
    sub.mkdir()
    image_for({"smile": 0.9}).save(sub / "c.jpg")
    files = find_image_files(dataset, recursive=True)
    assert sub / "c.jpg" in files and len(files) == 5
    counts = count_tags(tag_image_files(model, files))
    assert counts["smile"] == 2 and counts["1girl"] == 1
    with pytest.raises(FileNotFoundError, match="nope"):
        find_image_files(dataset / "nope")
