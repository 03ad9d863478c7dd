"""Preprocess core: modes, flip, captions, lazy transform records, config validation."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypernet.data.dataset import Dataset, DatasetItem, load_item_image
from hypernet.data.load import load_dataset
from hypernet.preprocess.captions import combine_caption
from hypernet.preprocess.config import PreprocessConfig
from hypernet.preprocess.pipeline import preprocess
from hypernet.preprocess.plan import fit_transform, keep_transform
from tests.support.images import build_mode_zoo, pattern_rgb


def _dataset(tmp_path, sizes, captions=None):
    folder = tmp_path / "src"
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        pattern_rgb(w, h, seed=i).save(folder / f"img{i}.png")
        if captions and captions[i] is not None:
            (folder / f"img{i}.txt").write_text(captions[i])
    return load_dataset(str(folder)).dataset


def test_crop_mode_covers_and_centre_crops(tmp_path):
    ds = _dataset(tmp_path, [(100, 50)])
    out = preprocess(ds, PreprocessConfig(width=64, height=64)).dataset
    assert len(out) == 1 and out[0].size == (64, 64)
    t = out[0].transforms[-1]
    assert t.box == (25.0, 0.0, 75.0, 50.0)  # centre 50x50 square of the 100x50 image
    img = load_item_image(out[0])
    ref = pattern_rgb(100, 50, 0).crop((25, 0, 75, 50)).resize((64, 64), Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(img, np.int16) - np.asarray(ref, np.int16))
    assert diff.mean() < 0.5  # the box resample also sees pixels just outside the crop


def test_fit_mode_pads(tmp_path):
    ds = _dataset(tmp_path, [(100, 50)])
    cfg = PreprocessConfig(width=64, height=64, mode="fit", pad_color=(0, 255, 0))
    out = preprocess(ds, cfg).dataset
    img = np.asarray(load_item_image(out[0]))
    assert img.shape == (64, 64, 3)
    assert (img[:16] == (0, 255, 0)).all() and (img[48:] == (0, 255, 0)).all()
    assert not (img[20:44] == (0, 255, 0)).all()
    t = fit_transform(100, 50, (64, 64), (0, 0, 0))
    assert t.size == (64, 32) and t.offset == (0, 16)


def test_keep_mode_trims_to_multiple_of_8_only(tmp_path):
    ds = _dataset(tmp_path, [(37, 23), (48, 16)])
    out = preprocess(ds, PreprocessConfig(mode="keep")).dataset
    assert [i.size for i in out] == [(32, 16), (48, 16)]
    assert out[1].transforms == ()  # already aligned: used as is
    src = np.asarray(pattern_rgb(37, 23, 0))
    assert np.array_equal(np.asarray(load_item_image(out[0])), src[3:19, 2:34])
    with pytest.raises(ValueError):
        keep_transform(5, 40)


def test_tiny_and_extreme_images_in_every_mode(tmp_path):
    ds = _dataset(tmp_path, [(10, 7), (3000, 200), (64, 64)])
    for mode in ("crop", "fit", "buckets"):
        cfg = PreprocessConfig(width=64, height=64, mode=mode, bucket_min=64, bucket_max=256,
                               bucket_step=8)
        result = preprocess(ds, cfg)
        for item in result.dataset:
            assert load_item_image(item).size == item.size
        assert result.stats["upscaled"] >= 1  # the 10x7 image had to grow
    keep = preprocess(ds, PreprocessConfig(mode="keep"))
    assert [i.size for i in keep.dataset] == [(3000, 200), (64, 64)]  # 10x7 has no 8x8
    assert keep.stats["skipped"] == 1 and "img0.png" in keep.report


def test_buckets_mode_assigns_and_reports(tmp_path):
    ds = _dataset(tmp_path, [(600, 400), (400, 600), (512, 512), (3000, 200)])
    result = preprocess(ds, PreprocessConfig(mode="buckets"))
    sizes = [i.size for i in result.dataset]
    assert sizes == [(640, 384), (384, 640), (512, 512), (1024, 256)]
    groups = result.dataset.group_by_size()
    assert groups[(512, 512)] == [2]
    assert "640x384: 1" in result.report and "img3.png -> 1024x256" in result.report
    no_up = preprocess(ds, PreprocessConfig(mode="buckets", no_upscale=True))
    assert no_up.dataset[2].size == (512, 512)
    assert no_up.dataset[0].size == (576, 384)  # 600x400 fits the area: floored to 64


def test_flip_doubles_and_mirrors(tmp_path):
    ds = _dataset(tmp_path, [(80, 48), (64, 64)])
    plain = preprocess(ds, PreprocessConfig(width=64, height=64)).dataset
    flipped = preprocess(ds, PreprocessConfig(width=64, height=64, flip=True)).dataset
    assert len(flipped) == 2 * len(plain)
    for i, item in enumerate(plain):
        a = np.asarray(load_item_image(flipped[2 * i]))
        b = np.asarray(load_item_image(flipped[2 * i + 1]))
        assert np.array_equal(a, np.asarray(load_item_image(item)))
        assert np.array_equal(b, a[:, ::-1])
        assert flipped[2 * i + 1].flipped and not flipped[2 * i].flipped


@pytest.mark.parametrize("action,expected", [
    ("ignore", ["new words", "new words"]),
    ("copy", ["old caption", ""]),
    ("existing_first", ["old caption new words", "new words"]),
    ("new_first", ["new words old caption", "new words"]),
    ("prepend", ["old caption new words", "new words"]),  # A1111's names, still accepted from saved workflows
    ("append", ["new words old caption", "new words"]),
])
def test_existing_caption_actions(tmp_path, action, expected):
    ds = _dataset(tmp_path, [(64, 64), (64, 64)], captions=["old caption", None])
    cfg = PreprocessConfig(width=64, height=64, existing_caption=action, caption_text="new words")
    assert [i.caption for i in preprocess(ds, cfg).dataset] == expected


def test_a1111_caption_action_names_are_stored_as_todays():
    assert PreprocessConfig(existing_caption="prepend").existing_caption == "existing_first"
    assert PreprocessConfig(existing_caption="append").existing_caption == "new_first"


def test_combine_caption_separator_and_empty_parts():
    assert combine_caption("a, b", "c", "existing_first", ", ") == "a, b, c"
    assert combine_caption("a", "", "new_first", ", ") == "a"
    assert combine_caption("", "", "existing_first") == ""
    with pytest.raises(ValueError, match="existing_caption"):
        combine_caption("a", "b", "merge")


def test_repeats_and_captions_carried(tmp_path):
    item = DatasetItem(str(tmp_path / "a.png"), 80, 48, "cap", 7)
    pattern_rgb(80, 48).save(item.path)
    out = preprocess(Dataset([item], str(tmp_path)), PreprocessConfig(width=64, height=64, flip=True))
    assert all(i.repeats == 7 and i.caption == "cap" for i in out.dataset)
    assert out.dataset.history[-1]["step"] == "preprocess"


def test_lazy_preprocess_chains(tmp_path):
    ds = _dataset(tmp_path, [(200, 100)])
    first = preprocess(ds, PreprocessConfig(width=128, height=64)).dataset
    second = preprocess(first, PreprocessConfig(width=64, height=64, flip=True)).dataset
    assert len(second) == 2 and len(second[0].transforms) == 2
    assert load_item_image(second[1]).size == (64, 64)


def test_mode_zoo_all_materialise(tmp_path):
    build_mode_zoo(tmp_path / "zoo")
    ds = load_dataset(str(tmp_path / "zoo")).dataset
    result = preprocess(ds, PreprocessConfig(width=64, height=64, mode="fit"))
    assert len(result.dataset) == len(ds)
    for item in result.dataset:
        img = load_item_image(item)
        assert img.mode == "RGB" and img.size == (64, 64)


def test_progress_called_per_item(tmp_path):
    ds = _dataset(tmp_path, [(64, 64)] * 3)
    calls = []
    preprocess(ds, PreprocessConfig(width=64, height=64), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_progress_is_throttled_for_large_datasets(tmp_path):
    pattern_rgb(80, 48).save(tmp_path / "a.png")
    items = [DatasetItem(str(tmp_path / "a.png"), 80, 48)] * 1000
    calls = []
    result = preprocess(Dataset(items, str(tmp_path)), PreprocessConfig(width=64, height=64),
                        progress=lambda d, t: calls.append((d, t)))
    assert len(result.dataset) == 1000
    assert len(calls) <= 201 and calls[-1] == (1000, 1000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_lazy_cancel_returns_partial(tmp_path):
    ds = _dataset(tmp_path, [(64, 64)] * 4)
    polls = iter([False, False, True, True, True])
    result = preprocess(ds, PreprocessConfig(width=64, height=64), should_cancel=lambda: next(polls))
    assert result.cancelled and len(result.dataset) == 2 and "CANCELLED" in result.report


@pytest.mark.parametrize("kwargs,field", [
    ({"width": 500}, "width"), ({"height": 32}, "height"), ({"mode": "stretch"}, "mode"),
    ({"split_threshold": 1.5}, "split_threshold"), ({"split_overlap": 0.95}, "split_overlap"),
    ({"existing_caption": "merge"}, "existing_caption"), ({"workers": -1}, "workers"),
    ({"auto_size_min_dim": 800, "auto_size_max_dim": 768}, "auto_size_min_dim"),
    ({"auto_size_objective": "best"}, "objective"), ({"output_directory": "rel/out"}, "output_directory"),
    ({"mode": "buckets", "bucket_step": 12}, "bucket_step"),
    ({"if_output_exists": "mix"}, "if_output_exists"),
    ({"pad_color": (1, 2)}, "pad_color"), ({"edges_weight": 2}, "edges_weight"),
])
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PreprocessConfig(**kwargs)


def test_config_round_trip_and_a1111_labels():
    cfg = PreprocessConfig(auto_size_objective="Minimize error", on_bad_file="skip and report")
    assert cfg.auto_size_objective == "minimize_error" and cfg.on_bad_file == "skip"
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        PreprocessConfig.from_dict({"widht": 512})


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_file_at_preprocess_time_skipped_or_fails(tmp_path, workers):
    ds = _dataset(tmp_path, [(64, 64), (64, 64)])
    (tmp_path / "src" / "img1.png").write_bytes(b"broken now")
    out = tmp_path / "out"
    result = preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(out),
                                             workers=workers))
    assert len(result.dataset) == 1 and result.stats["skipped"] == 1
    assert "img1.png" in result.report
    with pytest.raises(ValueError, match="img1.png"):
        preprocess(ds, PreprocessConfig(width=64, height=64, output_directory=str(tmp_path / "o2"),
                                        on_bad_file="fail", workers=workers))
