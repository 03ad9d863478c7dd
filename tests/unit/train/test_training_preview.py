"""Training previews: A1111's templated prompt when none is given, fixed or random seeds."""
from __future__ import annotations

import random

import pytest

from hypernet.train.train_config import TrainConfig
from hypernet.train.training_preview import MAX_SEED, PreviewSeeds, default_preview_prompt
from hypernet.train.templates import build_prompt, CaptionConfig, parse_template


def test_default_prompt_is_the_templated_training_prompt_of_item_0():
    lines = parse_template("a photo of [name], [filewords]\n[filewords] by [name]\nart of [name]")
    for seed in range(20):
        prompt = default_preview_prompt(lines, "demo_style", "red circle, blue", seed)
        assert "demo_style" in prompt and prompt != "red circle, blue"
        # The same line training uses for item 0 in the first epoch (no tag augmentation).
        assert prompt == build_prompt(lines, "demo_style", "red circle, blue", CaptionConfig(), seed=seed,
                                      item_index=0, step=0, epoch=0)


def test_fixed_seed_repeats_and_is_reported():
    seeds = PreviewSeeds("fixed", 1234)
    assert [seeds.next(step) for step in (10, 20)] == [1234, 1234]
    assert seeds.report_line() == "previews: seed 1234 (fixed)"


def test_random_seed_is_new_per_preview_and_each_is_reported():
    seeds = PreviewSeeds("random", 1234, rng=random.Random(7))
    used = [seeds.next(step) for step in (10, 20, 30)]
    assert len(set(used)) == 3 and all(0 <= s <= MAX_SEED for s in used) and 1234 not in used
    line = seeds.report_line()
    assert all(f"step {step}: {seed}" in line for step, seed in zip((10, 20, 30), used))
    assert PreviewSeeds("random", 0).report_line() is None  # no preview rendered, nothing to report


def test_preview_seed_mode_is_a_validated_config_field():
    assert TrainConfig().preview_seed_mode == "fixed"
    assert TrainConfig(preview_seed_mode="random").to_dict()["preview_seed_mode"] == "random"
    with pytest.raises(ValueError, match="preview_seed_mode.*fixed, random"):
        TrainConfig(preview_seed_mode="sometimes")
