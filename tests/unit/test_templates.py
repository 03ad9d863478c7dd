"""Templates: substitution, seeded (resume-exact) line choice and tag shuffle/dropout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hypernet.train.templates import (
    CaptionConfig,
    augment_tags,
    build_prompt,
    choose_template_line,
    derive_seed,
    fill_template,
    parse_template,
    template_line_index,
)
from hypernet.util.caption_tags import split_tags

CAPTION = "red hair, blue eyes, smile, outdoors, hat, dress, tree, sky"
# many lines, as A1111's template files have (subject_filewords.txt has 27)
MANY_LINES = "\n".join(f"a photo number {i} of the [name], [filewords]" for i in range(27))


def test_fill_template_substitutes_both_tokens_every_time():
    line = "a painting of [filewords], art by [name], [name]"
    assert fill_template(line, "mynet", "a cat") == "a painting of a cat, art by mynet, mynet"


def test_fill_template_without_tokens_is_unchanged():
    assert fill_template("picture", "mynet", "a cat") == "picture"


def test_parse_template_strips_and_drops_blank_lines():
    assert parse_template("  a [name]  \n\n b [filewords]\r\n   \n") == ("a [name]", "b [filewords]")


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_parse_template_empty_is_an_error(text):
    with pytest.raises(ValueError, match="template has no prompt lines"):
        parse_template(text)


def test_template_line_is_deterministic_and_covers_lines():
    lines = parse_template(MANY_LINES)
    picks = [template_line_index(len(lines), 7, i) for i in range(200)]
    assert picks == [template_line_index(len(lines), 7, i) for i in range(200)]
    assert len(set(picks)) > 15  # spread over the lines, not a constant
    other_seed = [template_line_index(len(lines), 8, i) for i in range(200)]
    assert other_seed != picks
    other_epoch = [template_line_index(len(lines), 7, i, epoch=1) for i in range(200)]
    assert other_epoch != picks


def test_choose_template_line_returns_a_line():
    lines = ("a", "b", "c")
    assert choose_template_line(lines, 0, 3) in lines


def test_derive_seed_is_stable_across_processes():
    code = "from hypernet.train.templates import derive_seed; print(derive_seed('tags', 1, 2, 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2],
                         env={"PYTHONHASHSEED": "123", "PYTHONPATH": "."})
    assert int(out.stdout) == derive_seed("tags", 1, 2, 3)


def test_no_augmentation_returns_caption_unchanged():
    assert augment_tags(" a,b ,, c", seed=1, step=2, item_index=3) == " a,b ,, c"


def test_shuffle_is_reproducible_and_changes_with_step_and_item():
    kw = dict(seed=42, shuffle=True)
    first = augment_tags(CAPTION, step=10, item_index=3, **kw)
    assert first == augment_tags(CAPTION, step=10, item_index=3, **kw)
    assert sorted(split_tags(first)) == sorted(split_tags(CAPTION))
    by_step = {augment_tags(CAPTION, step=s, item_index=3, **kw) for s in range(10)}
    by_item = {augment_tags(CAPTION, step=10, item_index=i, **kw) for i in range(10)}
    assert len(by_step) > 5 and len(by_item) > 5


def test_dropout_keeps_about_one_minus_p():
    kept = [len(split_tags(augment_tags(CAPTION, seed=1, step=s, item_index=0, dropout=0.25)))
            for s in range(400)]
    mean = sum(kept) / len(kept) / 8
    assert 0.70 < mean < 0.80
    # without shuffle the surviving tags keep their order
    out = split_tags(augment_tags(CAPTION, seed=1, step=3, item_index=0, dropout=0.5))
    tags = split_tags(CAPTION)
    assert out == [t for t in tags if t in out]


def test_dropout_one_drops_everything_but_keep_tokens():
    assert augment_tags(CAPTION, seed=1, step=0, item_index=0, dropout=1.0) == ""
    assert augment_tags(CAPTION, seed=1, step=0, item_index=0, dropout=1.0, keep_tokens=2) == "red hair, blue eyes"


def test_keep_tokens_stay_first_under_shuffle():
    for step in range(20):
        out = split_tags(augment_tags(CAPTION, seed=5, step=step, item_index=1, shuffle=True, keep_tokens=2))
        assert out[:2] == ["red hair", "blue eyes"]


def test_empty_tags_in_caption_are_dropped_when_augmenting():
    out = augment_tags("a,, ,b,", seed=0, step=0, item_index=0, shuffle=True)
    assert sorted(split_tags(out)) == ["a", "b"]
    assert ",," not in out and not out.endswith(",")


def test_empty_caption_stays_empty():
    assert augment_tags("", seed=0, step=0, item_index=0, shuffle=True, dropout=0.5) == ""


@pytest.mark.parametrize("dropout", [-0.1, 1.5, float("nan"), True])
def test_bad_dropout_is_rejected(dropout):
    with pytest.raises(ValueError, match="tag_dropout"):
        augment_tags("a", seed=0, step=0, item_index=0, dropout=dropout)
    with pytest.raises(ValueError, match="tag_dropout"):
        CaptionConfig(tag_dropout=dropout)


def test_caption_config_validation_and_round_trip():
    cfg = CaptionConfig(shuffle_tags=True, tag_dropout=0.1, keep_tokens=1)
    assert CaptionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="keep_tokens"):
        CaptionConfig(keep_tokens=-1)
    with pytest.raises(ValueError, match="caption settings: unknown keys"):
        CaptionConfig.from_dict({"shuffle": True})


def test_template_fixed_per_image_without_augmentation():
    """A1111: no shuffle/dropout -> the line is chosen once per image (prompt can be cached)."""
    lines = parse_template("a painting of [filewords], art by [name]\na picture of [filewords], art by [name]")
    cfg = CaptionConfig()
    assert not cfg.augments
    prompts = {build_prompt(lines, "net", "a cat", cfg, seed=3, item_index=4, step=s, epoch=s // 5)
               for s in range(50)}
    assert len(prompts) == 1
    (prompt,) = prompts
    assert prompt.endswith("of a cat, art by net")


def test_template_repicked_per_epoch_with_shuffle():
    lines = parse_template(MANY_LINES)
    cfg = CaptionConfig(shuffle_tags=True)
    assert cfg.augments and cfg.template_per_epoch
    heads = {build_prompt(lines, "net", CAPTION, cfg, seed=3, item_index=4, step=e, epoch=e).split(",")[0]
             for e in range(40)}
    assert len(heads) > 5
    forced_fixed = CaptionConfig(shuffle_tags=True, resample_template=False)
    heads_fixed = {build_prompt(lines, "net", CAPTION, forced_fixed, seed=3, item_index=4, step=e, epoch=e).split(",")[0]
                   for e in range(40)}
    assert len(heads_fixed) == 1


def test_build_prompt_resume_exact():
    lines = parse_template(MANY_LINES)
    cfg = CaptionConfig(shuffle_tags=True, tag_dropout=0.2, keep_tokens=1)

    def run(steps):
        return [build_prompt(lines, "net", CAPTION, cfg, seed=11, item_index=s % 3, step=s, epoch=s // 3)
                for s in steps]

    full = run(range(30))
    assert run(range(12, 30)) == full[12:]
