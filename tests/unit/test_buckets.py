"""kohya aspect-ratio buckets: bucket list, assignment, no_upscale, and the resulting crop."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypernet.preprocess.buckets import (bucket_transform, make_bucket_resolutions, round_to_steps,
                              select_bucket, validate_bucket_params)
from hypernet.data.dataset import apply_transform
from tests.support.images import pattern_rgb

BUCKETS_512 = make_bucket_resolutions((512, 512), 256, 1024, 64)


def test_bucket_list_for_512_matches_kohya_example():
    # kohya's documented list: "256x1024, 320x768, 384x640, 448x576, 512x512, and transposes"
    expected = {(256, 1024), (320, 768), (384, 640), (448, 576), (512, 512)}
    expected |= {(h, w) for w, h in expected}
    assert expected <= set(BUCKETS_512)
    # width 832: 512*512 // 832 = 315 -> floored to the 64 grid = 256 (>= bucket_min) -> kept
    assert (832, 256) in BUCKETS_512 and (256, 832) in BUCKETS_512
    # a narrower height than the grid allows is never produced
    assert all(w * h <= 512 * 512 and w % 64 == 0 and h % 64 == 0 for w, h in BUCKETS_512)
    # by hand: widths 256..1024 step 64 give heights 1024, 768, 640, 576, 512, 448, 384, 320,
    # 320, 256, 256, 256, 256; with transposes that is 17 distinct buckets
    hand = {(256, 1024), (320, 768), (384, 640), (448, 576), (512, 512), (576, 448), (640, 384),
            (704, 320), (768, 320), (832, 256), (896, 256), (960, 256), (1024, 256)}
    assert set(BUCKETS_512) == hand | {(h, w) for w, h in hand}
    assert len(BUCKETS_512) == 17
    assert BUCKETS_512 == sorted(BUCKETS_512)


@pytest.mark.parametrize("reso,lo,hi,step", [((768, 512), 256, 1024, 64), ((640, 640), 320, 1280, 32),
                                             ((1024, 1024), 512, 2048, 64)])
def test_bucket_list_rules(reso, lo, hi, step):
    buckets = make_bucket_resolutions(reso, lo, hi, step)
    area = reso[0] * reso[1]
    assert len(set(buckets)) == len(buckets)
    for w, h in buckets:
        assert w * h <= area
        assert (h, w) in buckets
        assert h % step == 0 or w % step == 0
        square = int(np.sqrt(area) // step) * step
        if (w, h) != (square, square):
            assert lo <= w <= hi and lo <= h <= hi
    assert (int(np.sqrt(area) // step) * step,) * 2 in buckets


def test_exact_size_keeps_its_bucket():
    choice = select_bucket(384, 640, BUCKETS_512, max_area=512 * 512, step=64)
    assert choice.bucket == (384, 640) and choice.resized == (384, 640)


def test_closest_aspect_then_cover_and_crop():
    # 600x400 (1.5): 640x384 (1.667) is closer than 576x448 (1.286); image is relatively
    # narrower than the bucket so the width is matched: 640 x round(400*640/600) = 640x427.
    choice = select_bucket(600, 400, BUCKETS_512, max_area=512 * 512, step=64)
    assert choice.bucket == (640, 384)
    assert choice.resized == (640, 427)


def test_extreme_aspect_goes_to_the_widest_bucket():
    choice = select_bucket(3000, 200, BUCKETS_512, max_area=512 * 512, step=64)
    assert choice.bucket == (1024, 256)
    assert choice.resized == (3840, 256)  # height matched, width cropped centrally


def test_upscale_small_image():
    choice = select_bucket(20, 20, BUCKETS_512, max_area=512 * 512, step=64)
    assert choice.bucket == (512, 512) and choice.resized == (512, 512)


def test_no_upscale_small_image_keeps_size_floored_to_step():
    choice = select_bucket(300, 200, BUCKETS_512, max_area=512 * 512, step=64, no_upscale=True)
    assert choice.resized == (300, 200)
    assert choice.bucket == (256, 192)
    with pytest.raises(ValueError, match="bucket_step"):
        select_bucket(40, 200, BUCKETS_512, max_area=512 * 512, step=64, no_upscale=True)


def test_no_upscale_large_image_shrinks_to_area():
    # 2000x1000 (aspect 2) at area 512^2: exact size 724.1x362.0; rounding the width gives
    # 704/320 (aspect 2.2), rounding the height 640/320 (aspect 2.0) -> the height variant.
    choice = select_bucket(2000, 1000, BUCKETS_512, max_area=512 * 512, step=64, no_upscale=True)
    assert choice.resized == (640, 320)
    assert choice.bucket == (640, 320)


def test_round_to_steps():
    assert round_to_steps(95.5, 64) == 64
    assert round_to_steps(127.6, 64) == 128
    assert round_to_steps(63.4, 64) == 0


def test_bucket_transform_matches_resize_then_centre_crop():
    img = pattern_rgb(64, 40)  # aspect 1.6: 32x16 (2.0) is closer than 24x24 (1.0)
    choice = select_bucket(64, 40, [(32, 16), (16, 32), (24, 24)], max_area=32 * 16, step=8)
    assert choice.bucket == (32, 16)
    out = apply_transform(img, bucket_transform(64, 40, choice))
    assert out.size == (32, 16)
    rw, rh = choice.resized
    ref = img.resize((rw, rh), Image.Resampling.LANCZOS)
    oy = (rh - 16) // 2
    ref = ref.crop((0, oy, 32, oy + 16))
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(ref, np.int16))
    assert diff.mean() < 3  # same region; one resample instead of two


def test_aspect_tie_broken_by_closest_area():
    # 60x40 (1.5) is 0.5 away from both 32x16 (2.0) and 24x24 (1.0); 24x24 is closer in area
    choice = select_bucket(60, 40, [(32, 16), (24, 24)], max_area=32 * 16, step=8)
    assert choice.bucket == (24, 24)
    choice = select_bucket(6, 4, [(32, 16), (24, 24)], max_area=32 * 16, step=8)
    assert choice.bucket == (32, 16)  # area 24 is closer to 512 than to 576


def test_validate_bucket_params():
    validate_bucket_params(512, 512, 256, 1024, 64)
    with pytest.raises(ValueError, match="bucket_step"):
        validate_bucket_params(512, 512, 256, 1024, 60)
    with pytest.raises(ValueError, match="bucket_min"):
        validate_bucket_params(512, 512, 640, 1024, 64)
    with pytest.raises(ValueError, match="bucket_max"):
        validate_bucket_params(768, 512, 256, 640, 64)
