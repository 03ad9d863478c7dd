"""Grid axis values: A1111 ranges, typed axes, seeds, choice lists, prompt S/R, hypernetwork files."""
from __future__ import annotations

import random

import pytest

from hypernet.grid.values import (
    AXIS_PARSERS,
    AxisContext,
    AxisType,
    axis_type_from,
    check_grid_size,
    format_label,
    hypernetwork_sort_key,
    parse_axis,
    parse_numbers,
    resolve_hypernetworks,
    split_values,
    step_from_name,
)


# ---------------------------------------------------------------- splitting and numbers
def test_split_values_csv_quotes_newlines_blanks():
    assert split_values('a, "b, c",,  d\ne') == ["a", "b, c", "d", "e"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1, 2, 5", [1, 2, 5]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-10 (+3)", [1, 4, 7, 10]),
        ("1-10 (3)", [1, 4, 7, 10]),
        ("1-10 [4]", [1, 4, 7, 10]),
        ("1-10 [3]", [1, 5, 10]),  # linspace 1, 5.5, 10 cast to int like A1111
        ("5-1", [5, 4, 3, 2, 1]),
        ("10-1 (-3)", [10, 7, 4, 1]),
        ("-1", [-1]),
        ("-5--2", [-5, -4, -3, -2]),
        ("-2-2 (+2)", [-2, 0, 2]),
        ("7-7", [7]),
        ("3-9 [1]", [3]),
        ("1-3, 10", [1, 2, 3, 10]),
    ],
)
def test_int_values_and_ranges(text, expected):
    values = parse_numbers(text, int)
    assert values == expected
    assert all(type(v) is int for v in values)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.5, 1, 1.25", [0.5, 1.0, 1.25]),
        ("0-1 (+0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("0-1 (+0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        ("0.5-1.5 [5]", [0.5, 0.75, 1.0, 1.25, 1.5]),
        ("-0.5-0.5 (+0.25)", [-0.5, -0.25, 0.0, 0.25, 0.5]),
        ("1-0 (-0.5)", [1.0, 0.5, 0.0]),
        ("1e-5-3e-5 [3]", [1e-5, 2e-5, 3e-5]),
        ("-1.5", [-1.5]),
        ("0-1 (+0.3)", [0.0, 0.3, 0.6, 0.9]),
        (".5", [0.5]),
    ],
)
def test_float_values_and_ranges(text, expected):
    values = parse_numbers(text, float)
    assert values == pytest.approx(expected)
    assert len(values) == len(expected)
    assert all(isinstance(v, float) for v in values)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("1.5", "expected integers"),
        ("abc", "expected integers"),
        ("1-10 (+0)", "must not be 0"),
        ("1-10 (-2)", "points away"),
        ("1-5-9", "expected integers"),
        ("1-10 [0]", ">= 1"),
        ("1-100000", "at most"),
    ],
)
def test_bad_int_values_name_axis_and_value(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_numbers(text, int, axis="Y", axis_type=AxisType.STEPS)
    message = str(info.value)
    assert message.startswith("Y axis (steps): bad value")
    assert fragment in message


def test_bad_float_value_message():
    with pytest.raises(ValueError, match=r"X axis \(strength\): bad value 'inf'.*numbers or ranges"):
        parse_numbers("0.5, inf", float)


def test_range_bounds_are_checked():
    with pytest.raises(ValueError, match="out of range"):
        parse_axis("steps", "0-3")
    with pytest.raises(ValueError, match="out of range"):
        parse_axis("cfg", "-1, 5")


# ---------------------------------------------------------------- typed axes
def test_registry_covers_every_axis_type():
    assert set(AXIS_PARSERS) == set(AxisType)
    assert axis_type_from("Seed") is AxisType.SEED
    assert axis_type_from("prompt s/r") is AxisType.PROMPT_SR
    with pytest.raises(ValueError, match="unknown axis type 'lora'.*hypernetwork"):
        axis_type_from("lora")


def test_none_axis_is_one_unlabelled_cell():
    axis = parse_axis(AxisType.NONE, "whatever")
    assert axis.values == (None,) and axis.labels == ("",)


def test_strength_and_cfg_axes_labels():
    strength = parse_axis("strength", "0-1 [3]")
    assert strength.values == (0.0, 0.5, 1.0)
    assert strength.labels == ("Strength: 0", "Strength: 0.5", "Strength: 1")
    cfg = parse_axis("cfg", "7, 7.5")
    assert cfg.labels == ("CFG: 7", "CFG: 7.5")
    assert format_label(AxisType.STRENGTH, 1 / 3) == "Strength: 0.33333333"


def test_steps_axis_ints():
    axis = parse_axis("steps", "10-30 (+10)", name="Y")
    assert axis.values == (10, 20, 30) and axis.name == "Y"
    assert axis.labels[0] == "Steps: 10"


def test_seed_minus_one_resolved_once_from_rng():
    ctx = AxisContext(rng=random.Random(1234))
    axis = parse_axis("seed", "5, -1, -1", ctx)
    expected_rng = random.Random(1234)
    expected = [expected_rng.randrange(2 ** 32), expected_rng.randrange(2 ** 32)]
    assert axis.values == (5, *expected)
    assert axis.values[1] != axis.values[2]
    assert axis.labels == tuple(f"Seed: {v}" for v in axis.values)


def test_seed_keep_minus_one_and_bounds():
    axis = parse_axis("seed", "-1, 3", AxisContext(keep_random_seeds=True))
    assert axis.values == (-1, 3)
    with pytest.raises(ValueError, match="out of range"):
        parse_axis("seed", "-2")
    assert parse_axis("seed", "18446744073709551615").values == (2 ** 64 - 1,)


def test_clip_skip_accepts_both_conventions():
    axis = parse_axis("clip_skip", "1-2, -3")
    assert axis.values == (1, 2, 3)
    with pytest.raises(ValueError, match="clip skip counts from 1"):
        parse_axis("clip_skip", "0")


def test_sampler_and_scheduler_validated_against_lists():
    ctx = AxisContext(samplers=["euler", "euler_ancestral", "dpmpp_2m"], schedulers=["normal", "karras"])
    assert parse_axis("sampler", "Euler, dpmpp_2m", ctx).values == ("euler", "dpmpp_2m")
    assert parse_axis("scheduler", "karras", ctx).labels == ("karras",)
    with pytest.raises(ValueError, match=r"X axis \(sampler\): bad value 'ddim'.*euler_ancestral"):
        parse_axis("sampler", "euler, ddim", ctx)


def test_prompt_sr_first_value_must_occur():
    ctx = AxisContext(prompt="a cat, <hypernet:foo:1>", negative_prompt="blurry")
    axis = parse_axis("prompt_sr", "cat, dog, bird", ctx)
    assert axis.values == ("cat", "dog", "bird") and axis.labels == ("cat", "dog", "bird")
    assert parse_axis("prompt_sr", "blurry, sharp", ctx).values[0] == "blurry"
    with pytest.raises(ValueError, match="'horse'.*must occur in the prompt"):
        parse_axis("prompt_sr", "horse, dog", ctx)


def test_empty_axis_is_an_error():
    with pytest.raises(ValueError, match="no values given"):
        parse_axis("strength", " , ")


# ---------------------------------------------------------------- hypernetwork files
FILES = [
    "mynet/mynet-1000.pt",
    "mynet/mynet-500.pt",
    "mynet/mynet-10000.pt",
    "mynet/mynet.pt",
    "other.pt",
    "style/Anime-2.safetensors",
]


def test_step_from_name():
    assert step_from_name("mynet/mynet-1500.pt") == 1500
    assert step_from_name("a/b/net-7.safetensors") == 7
    assert step_from_name("mynet.pt") is None


def test_glob_sorted_by_training_step_without_lookup():
    assert resolve_hypernetworks(["mynet/*.pt"], FILES) == [
        "mynet/mynet-500.pt", "mynet/mynet-1000.pt", "mynet/mynet-10000.pt", "mynet/mynet.pt"]


def test_glob_uses_step_lookup_first():
    steps = {"mynet/mynet.pt": 200}
    out = resolve_hypernetworks(["mynet/*"], FILES, step_lookup=steps.get)
    assert out[0] == "mynet/mynet.pt"


def test_names_none_and_case_insensitive_matches():
    out = resolve_hypernetworks(["other", "none", "MYNET/mynet-500.PT", "anime-2"], FILES)
    assert out == ["other.pt", None, "mynet/mynet-500.pt", "style/Anime-2.safetensors"]


def test_hypernetwork_axis_labels_drop_extension():
    axis = parse_axis("hypernetwork", "none, other, mynet/mynet-500", AxisContext(hypernetwork_files=FILES))
    assert axis.values == (None, "other.pt", "mynet/mynet-500.pt")
    assert axis.labels == ("none", "other", "mynet/mynet-500") and axis.title == ""


def test_checkpoints_of_one_run_are_labelled_by_step_with_the_files_in_the_title():
    files = ["mynet/mynet-500.pt", "mynet/mynet-1000.pt", "mynet.pt"]
    stored = {"mynet.pt": 1500}
    ctx = AxisContext(hypernetwork_files=files, step_lookup=stored.get)
    axis = parse_axis("hypernetwork", "none, mynet/*.pt, mynet", ctx)
    assert axis.labels == ("none", "step 500", "step 1000", "step 1500")
    # mynet.pt (the final file) does not end in its step: the legend names each file.
    assert axis.title == "Hypernetwork: step 500 = mynet/mynet-500; step 1000 = mynet/mynet-1000; step 1500 = mynet"
    periodic = parse_axis("hypernetwork", "mynet/*.pt", ctx)
    assert periodic.title == "Hypernetwork: mynet/mynet-<step>"
    assert axis.to_dict()["title"] == axis.title
    # A step that is unknown, or two files with the same step: the file names stay the labels.
    assert parse_axis("hypernetwork", "mynet", AxisContext(hypernetwork_files=files)).labels == ("mynet",)


def test_unknown_hypernetwork_and_empty_glob_are_errors():
    ctx = AxisContext(hypernetwork_files=FILES)
    with pytest.raises(ValueError, match=r"X axis \(hypernetwork\): bad value 'ghost'.*available: mynet"):
        parse_axis("hypernetwork", "ghost", ctx)
    with pytest.raises(ValueError, match="matches no hypernetwork"):
        parse_axis("hypernetwork", "nothing/*.pt", ctx)
    with pytest.raises(ValueError, match="no hypernetwork files were found"):
        parse_axis("hypernetwork", "x", AxisContext())


def test_ambiguous_basename_is_an_error():
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_hypernetworks(["net"], ["a/net.pt", "b/net.pt"])


def test_escaping_paths_cannot_resolve():
    with pytest.raises(ValueError, match="no such hypernetwork"):
        resolve_hypernetworks(["../secret.pt"], FILES)


def test_natural_order_for_names_without_steps():
    names = ["n10.pt", "n9.pt", "n100.pt"]
    assert sorted(names, key=hypernetwork_sort_key) == ["n9.pt", "n10.pt", "n100.pt"]


def test_axis_to_dict():
    d = parse_axis("steps", "1-2", name="Z").to_dict()
    assert d == {"name": "Z", "type": "steps", "text": "1-2", "values": [1, 2], "labels": ["Steps: 1", "Steps: 2"],
                 "title": "Steps"}


# ---------------------------------------------------------------- size guard
def test_grid_size_guard():
    check_grid_size(12, 512, 512)
    with pytest.raises(ValueError, match="401 cells.*limit of 400"):
        check_grid_size(401, 64, 64)
    with pytest.raises(ValueError, match="megapixels"):
        check_grid_size(100, 2048, 2048)
    with pytest.raises(ValueError, match="at least one value"):
        check_grid_size(0, 64, 64)
    check_grid_size(1000, 64, 64, max_cells=1000)
