"""A1111 tools inside Preprocess: split oversized, focal point crop, auto-sized crop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from hypernet.data.dataset import Dataset, DatasetItem, apply_transform, load_item_image
from hypernet.preprocess.autosize import choose_size
from hypernet.preprocess.preprocess_config import PreprocessConfig
from hypernet.preprocess.focal import corner_points, entropy_point, focal_crop
from hypernet.preprocess.pipeline import preprocess
from hypernet.preprocess.plan import plan_outputs
from hypernet.preprocess.split import split_ratio, split_tiles
from tests.support.images import flat_with_patch, pattern_rgb


def test_split_3000x200_tile_count_and_positions():
    # scaled to height 512 -> long side 3000*512//200 = 7680; n = ceil((7680 - 102.4) / 409.6) = 19
    tiles = split_tiles(3000, 200, 512, 512, 0.5, 0.2)
    assert tiles is not None and len(tiles) == 19
    step = (7680 - 512) / 18
    scale = 7680 / 3000
    for i, t in enumerate(tiles):
        assert t.size == (512, 512)
        assert t.box[1] == 0 and t.box[3] == 200
        assert t.box[0] == pytest.approx(int(step * i) / scale)
        assert t.box[2] - t.box[0] == pytest.approx(512 / scale)
    assert tiles[0].box[0] == 0
    assert tiles[-1].box[2] == pytest.approx(3000)  # last tile flush with the end
    overlaps = [a.box[2] - b.box[0] for a, b in zip(tiles, tiles[1:])]
    assert min(overlaps) * scale >= 0.2 * 512 - 1


def test_split_portrait_splits_along_y():
    tiles = split_tiles(100, 400, 64, 64, 0.5, 0.2)
    # width -> 64, long side 400*64//100 = 256; n = ceil((256 - 12.8) / 51.2) = 5
    assert len(tiles) == 5
    assert all(t.box[0] == 0 and t.box[2] == 100 for t in tiles)
    assert tiles[-1].box[3] == pytest.approx(400)


def test_split_threshold_and_ratio():
    assert split_ratio(300, 200, 512, 512) == (200 / 300, True)
    assert split_tiles(300, 200, 512, 512, 0.5, 0.2) is None  # ratio 0.67 > threshold
    assert split_tiles(300, 200, 512, 512, 0.7, 0.2) is not None
    assert split_tiles(512, 512, 512, 512, 1.0, 0.2) is None  # ratio 1 never splits


def test_split_tile_pixels_match_a1111_resize_then_cut():
    img = pattern_rgb(300, 60, seed=4)
    tiles = split_tiles(300, 60, 64, 64, 0.5, 0.0)
    long_len = 300 * 64 // 60  # 320
    assert len(tiles) == math.ceil(long_len / 64)
    scaled = img.resize((long_len, 64), Image.Resampling.LANCZOS)
    step = (long_len - 64) / (len(tiles) - 1)
    for i in (0, len(tiles) // 2, len(tiles) - 1):
        x = int(step * i)
        ref = np.asarray(scaled.crop((x, 0, x + 64, 64)), np.int16)
        got = np.asarray(apply_transform(img, tiles[i]), np.int16)
        assert np.abs(got - ref).mean() < 4


def test_split_in_preprocess_skips_default_resize(tmp_path):
    pattern_rgb(3000, 200).save(tmp_path / "wide.png")
    item = DatasetItem(str(tmp_path / "wide.png"), 3000, 200)
    cfg = PreprocessConfig(width=512, height=512, split_oversized=True)
    result = preprocess(Dataset([item], str(tmp_path)), cfg)
    assert result.stats["split"] == 19 and "crop" not in result.stats
    assert len(result.dataset) == 19


def test_focal_crop_moves_toward_salient_region():
    img = flat_with_patch(600, 200, (470, 40, 570, 160))
    result = focal_crop(img, 200, 200)
    left = result.box[0]
    assert left > 300  # centre crop would start at 200
    assert result.box[0] <= 470 and result.box[2] >= 570  # the patch is inside the crop
    assert set(result.points) == {"edges", "entropy"}
    mirrored = focal_crop(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 200, 200)
    assert mirrored.box[0] < 100


def test_focal_crop_portrait_and_weights():
    img = flat_with_patch(200, 600, (40, 30, 160, 130))
    top = focal_crop(img, 200, 200).box[1]
    assert top < 100
    only_edges = focal_crop(img, 200, 200, entropy_weight=0.0)
    assert set(only_edges.points) == {"edges"}
    nothing = focal_crop(img, 200, 200, entropy_weight=0.0, edges_weight=0.0)
    assert nothing.box[1] == pytest.approx(200)  # no method -> centre


def test_focal_ignores_watermark_band_for_edges():
    arr = np.full((100, 300), 128, np.float32)
    rng = np.random.default_rng(0)
    arr[92:100, 250:300] = rng.integers(0, 256, (8, 50))  # "watermark" in the bottom 10 %
    img = Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    result = focal_crop(img, 100, 100, entropy_weight=0.0)
    assert "edges" not in result.points


def test_flat_image_gives_no_points():
    assert entropy_point(np.full((20, 60), 99.0), 20, 20, 4) is None
    assert len(corner_points(np.full((20, 60), 99.0))) == 0


def test_corner_detector_finds_square_corners():
    g = np.zeros((60, 60), np.float32)
    g[20:40, 20:40] = 255
    pts = corner_points(g, min_distance=5)
    near = {(round(x / 10), round(y / 10)) for x, y in pts}
    assert {(2, 2), (4, 4), (2, 4), (4, 2)} <= near


def test_focal_in_preprocess_square_image_uses_default(tmp_path):
    flat_with_patch(300, 100, (230, 10, 290, 90)).save(tmp_path / "wide.png")
    pattern_rgb(64, 64).save(tmp_path / "square.png")
    items = [DatasetItem(str(tmp_path / "wide.png"), 300, 100),
             DatasetItem(str(tmp_path / "square.png"), 64, 64)]
    result = preprocess(Dataset(items, str(tmp_path)), PreprocessConfig(width=64, height=64, focal_crop=True))
    assert result.stats["focal"] == 1 and result.stats["crop"] == 1
    assert result.dataset[0].transforms[-1].box[0] > 150
    assert "faces were not used" in result.report
    assert load_item_image(result.dataset[0]).size == (64, 64)


def test_auto_size_choice_by_hand():
    # 600x400 (aspect 1.5): 768x512 is exact and its area 393216 <= 409600; the only larger
    # candidates within area (704x576, 640x640) are off by more than 10 %.
    assert choose_size(600, 400) == (768, 512)
    assert choose_size(600, 400, objective="minimize_error") == (768, 512)
    # area cap 300000: exact 576x384 (221184) vs 640x448 (286720, aspect 1.43, err 0.048)
    assert choose_size(600, 400, max_area=300000) == (640, 448)
    assert choose_size(600, 400, max_area=300000, objective="minimize_error") == (576, 384)
    assert choose_size(3000, 200) is None


def test_auto_size_in_preprocess(tmp_path):
    pattern_rgb(600, 400).save(tmp_path / "a.png")
    pattern_rgb(3000, 200).save(tmp_path / "b.png")
    items = [DatasetItem(str(tmp_path / "a.png"), 600, 400), DatasetItem(str(tmp_path / "b.png"), 3000, 200)]
    result = preprocess(Dataset(items, str(tmp_path)), PreprocessConfig(auto_size=True))
    assert [i.size for i in result.dataset] == [(768, 512)]
    assert result.stats["auto_size_no_fit"] == 1 and "b.png" in result.report


def test_tools_are_independent_outputs():
    img = flat_with_patch(300, 100, (230, 10, 290, 90))
    cfg = PreprocessConfig(width=64, height=64, split_oversized=True, focal_crop=True, flip=True)
    plan = plan_outputs(300, 100, cfg, image=img)
    kinds = [(o.kind, o.flipped) for o in plan.outputs]
    # 300x100 at 64: long side 192, n = ceil((192 - 12.8) / 51.2) = 4 tiles, then one focal crop
    assert kinds == [("split", False), ("split", True)] * 4 + [("focal", False), ("focal", True)]
