"""Schedules: A1111 schedule strings and MonkeyPatch cosine restarts against hand-computed values."""
from __future__ import annotations

import math

import pytest

from hypernet.train.schedule import CosineRestarts, ScheduleItem, StepSchedule, parse_schedule


# ---------------------------------------------------------------- A1111 schedule string
def test_two_items_switch_at_step_and_end_training():
    s = parse_schedule("5e-6:12000, 5e-7:30000", 100000)
    assert s.rate_at(0) == 5e-6
    assert s.rate_at(11999) == 5e-6
    assert s.rate_at(12000) == 5e-7
    assert s.rate_at(29999) == 5e-7
    # Training stops when the schedule ends, even though max steps is larger.
    assert s.end_step == 30000


def test_bare_rate_runs_to_max_steps():
    s = parse_schedule("0.00001", 500)
    assert s.items == (ScheduleItem(1e-5, 500),)
    assert s.rate_at(0) == s.rate_at(499) == 1e-5
    assert s.end_step == 500


def test_minus_one_runs_to_max_steps_and_stops_parsing():
    s = parse_schedule("1e-3:100, 1e-4:-1, 1e-5:5000", 2000)
    assert s.items == (ScheduleItem(1e-3, 100), ScheduleItem(1e-4, 2000))
    assert s.rate_at(1999) == 1e-4
    assert s.end_step == 2000


def test_bare_rate_after_items_stops_parsing():
    s = parse_schedule("1e-3:100, 1e-4, 1e-5:5000", 1000)
    assert [i.rate for i in s.items] == [1e-3, 1e-4]
    assert s.end_step == 1000


def test_step_past_max_is_clamped_and_later_items_ignored():
    s = parse_schedule("1e-3:100, 1e-4:9000, 1e-5:20000", 5000)
    assert s.items == (ScheduleItem(1e-3, 100), ScheduleItem(1e-4, 5000))
    assert s.end_step == 5000


def test_step_equal_to_max_ends_schedule():
    s = parse_schedule("1e-3:5000, 1e-4:6000", 5000)
    assert s.items == (ScheduleItem(1e-3, 5000),)


def test_schedule_shorter_than_max_ends_early():
    s = parse_schedule("1e-4:1000", 5000)
    assert s.end_step == 1000


def test_a1111_docstring_example():
    s = parse_schedule("0.001:100, 0.00001:1000, 1e-5:10000", 10000)
    assert [s.rate_at(k) for k in (0, 99, 100, 999, 1000, 9999)] == [0.001, 0.001, 1e-5, 1e-5, 1e-5, 1e-5]
    assert s.end_step == 10000


def test_rate_after_end_keeps_last_rate_for_clip_schedule():
    s = parse_schedule("0.1:50", 1000, field="clip_grad_value")
    assert s.rate_at(50) == 0.1
    assert s.rate_at(999) == 0.1


def test_resume_is_pure():
    """Resuming at step k gives exactly the rates of an uninterrupted run (A1111 re-parses with
    cur_step=k and skips items whose step <= k; here the lookup is by step)."""
    text, max_steps = "1e-3:10, 5e-4:25, 1e-4:40", 100
    full = parse_schedule(text, max_steps)
    uninterrupted = [full.rate_at(k) for k in range(full.end_step)]
    for k in (0, 9, 10, 11, 24, 25, 39):
        resumed = parse_schedule(text, max_steps)
        assert [resumed.rate_at(j) for j in range(k, resumed.end_step)] == uninterrupted[k:]
    # And a given step gives the same rate however often it is asked, in any order.
    assert [full.rate_at(k) for k in (30, 5, 30, 5)] == [1e-4, 1e-3, 1e-4, 1e-3]


def test_whitespace_and_trailing_comma_are_tolerated():
    s = parse_schedule("  5e-6 : 10 ,  5e-7 : 20 , ", 100)
    assert s.items == (ScheduleItem(5e-6, 10), ScheduleItem(5e-7, 20))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("abc", "'abc'"),
        ("1e-3:ten", "'1e-3:ten'"),
        ("1e-3:10:20", "more than one"),
        ("1e-3:0", "step must be >= 1"),
        ("1e-3:-5", "step must be >= 1"),
        ("1e-3:100, 1e-4:50", "steps must increase"),
        ("-1e-3", ">= 0"),
        ("nan", "finite"),
        ("1e-3:10.5", "not an integer"),
        ("   ", "is empty"),
    ],
)
def test_bad_items_name_field_item_and_syntax(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_schedule(text, 1000, field="learning_rate")
    message = str(info.value)
    assert message.startswith("learning_rate")
    assert fragment in message
    if text.strip():
        assert "rate:step" in message


def test_field_name_is_used_in_errors():
    with pytest.raises(ValueError, match="^clip_grad_value"):
        parse_schedule("x", 10, field="clip_grad_value")


def test_bad_max_steps_and_negative_step_query():
    with pytest.raises(ValueError, match="max steps"):
        parse_schedule("1e-3", 0)
    with pytest.raises(ValueError, match=">= 0"):
        parse_schedule("1e-3", 10).rate_at(-1)


def test_schedule_is_immutable_and_round_trips():
    s = parse_schedule("1e-3:10, 1e-4", 50, field="learning_rate")
    with pytest.raises(AttributeError):
        s.max_steps = 3  # type: ignore[misc]
    again = StepSchedule.from_dict(s.to_dict())
    assert again == s


def test_ignored_items_are_logged(caplog):
    with caplog.at_level("WARNING"):
        parse_schedule("1e-3:-1, 1e-4:10", 100)
    assert "1e-4:10" in caplog.text


# ---------------------------------------------------------------- cosine warm restarts
def test_cosine_equal_cycles_hand_values():
    c = CosineRestarts(base_lr=1e-3, cycle_steps=10, warmup_steps=2, min_lr=0.0, gamma=0.5)
    # cycle 0: warmup 0 -> 0.5 peak -> peak, cosine over the remaining 8 steps
    assert c.rate_at(0) == 0.0
    assert c.rate_at(1) == pytest.approx(0.5e-3)
    assert c.rate_at(2) == pytest.approx(1e-3)
    assert c.rate_at(6) == pytest.approx(0.5e-3)  # (6-2)/8 = 1/2 -> (1+cos(pi/2))/2
    assert c.rate_at(9) == pytest.approx(1e-3 * (1 + math.cos(math.pi * 7 / 8)) / 2)
    # cycle 1 restarts at min with the peak halved
    assert c.rate_at(10) == 0.0
    assert c.rate_at(12) == pytest.approx(0.5e-3)
    assert c.rate_at(22) == pytest.approx(0.25e-3)


def test_cosine_min_lr_floor_and_warmup_start():
    c = CosineRestarts(base_lr=1e-4, cycle_steps=4, warmup_steps=1, min_lr=1e-5)
    assert c.rate_at(0) == pytest.approx(1e-5)
    assert c.rate_at(1) == pytest.approx(1e-4)
    # offset 2: (2-1)/(4-1) = 1/3 of the cosine
    assert c.rate_at(2) == pytest.approx(1e-5 + 9e-5 * (1 + math.cos(math.pi / 3)) / 2)


def test_cosine_zero_warmup_starts_at_peak():
    c = CosineRestarts(base_lr=2e-4, cycle_steps=5, warmup_steps=0, min_lr=0.0)
    assert c.rate_at(0) == pytest.approx(2e-4)
    assert c.rate_at(5) == pytest.approx(2e-4)


def test_cosine_cycle_mult_lengths_and_cycle_ends():
    # mult 2, first cycle 4: cycles start at 0, 4, 12, 28 (MonkeyPatch closed form)
    c = CosineRestarts(base_lr=1.0, cycle_steps=4, cycle_mult=2.0, warmup_steps=1, min_lr=0.0, gamma=0.5)
    assert [c.cycle_at(k)[:2] for k in (0, 3, 4, 11, 12, 27, 28)] == [
        (0, 0), (0, 3), (1, 0), (1, 7), (2, 0), (2, 15), (3, 0)]
    assert c.cycle_at(5)[2] == 8.0
    assert [k for k in range(30) if c.is_cycle_end(k)] == [3, 11, 27]
    assert c.rate_at(5) == pytest.approx(0.5)  # end of warmup in cycle 1: peak 1 * 0.5
    assert c.rate_at(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 7)) / 2)


def test_cosine_cycle_boundaries_exact_where_float_log_errs():
    # log(1000, 10) evaluates to 2.9999999999999996: the boundary must still be exact.
    c = CosineRestarts(base_lr=1.0, cycle_steps=1, cycle_mult=10.0, warmup_steps=0, min_lr=0.0)
    assert c.cycle_at(111)[:2] == (3, 0)
    assert c.cycle_at(110)[:2] == (2, 99)
    assert c.is_cycle_end(110)


def test_cosine_fractional_cycle_length_still_ends():
    c = CosineRestarts(base_lr=1.0, cycle_steps=10, cycle_mult=1.5, warmup_steps=2, min_lr=0.0)
    ends = [k for k in range(60) if c.is_cycle_end(k)]
    # starts: 0, 10, floor(25) = 25, floor(47.5) = 47
    assert ends == [9, 24, 46]
    assert all(0.0 <= c.rate_at(k) <= 1.0 for k in range(60))


def test_cosine_equal_cycle_ends():
    c = CosineRestarts(base_lr=1e-3, cycle_steps=64, warmup_steps=5)
    assert [k for k in range(200) if c.is_cycle_end(k)] == [63, 127, 191]


def test_cosine_is_pure():
    c = CosineRestarts(base_lr=1e-3, cycle_steps=7, cycle_mult=1.3, warmup_steps=2, min_lr=1e-6, gamma=0.9)
    forward = [c.rate_at(k) for k in range(100)]
    assert [c.rate_at(k) for k in reversed(range(100))] == forward[::-1]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"base_lr": 0.0}, "base_lr"),
        ({"base_lr": 1e-3, "cycle_steps": 0}, "cycle_steps"),
        ({"base_lr": 1e-3, "cycle_mult": 0.5}, "cycle_mult"),
        ({"base_lr": 1e-3, "cycle_steps": 10, "warmup_steps": 10}, "warmup_steps"),
        ({"base_lr": 1e-3, "warmup_steps": -1}, "warmup_steps"),
        ({"base_lr": 1e-3, "min_lr": 2e-3}, "min_lr"),
        ({"base_lr": 1e-3, "gamma": 1.5}, "gamma"),
        ({"base_lr": float("inf")}, "base_lr"),
        ({"base_lr": 1e-3, "cycle_steps": 10.0}, "cycle_steps"),
    ],
)
def test_cosine_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CosineRestarts(**kwargs)


def test_cosine_round_trip_and_unknown_keys():
    c = CosineRestarts(base_lr=1e-3, cycle_steps=32, cycle_mult=2.0, warmup_steps=3, min_lr=1e-7, gamma=0.8)
    assert CosineRestarts.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown"):
        CosineRestarts.from_dict({"base_lr": 1e-3, "cycles": 3})


def test_zero_step_error_shows_a1111_skip_and_fix():
    with pytest.raises(ValueError) as info:
        parse_schedule("1e-3:0, 1e-4:500", 1000, field="learning_rate")
    message = str(info.value)
    assert message.startswith("learning_rate")
    assert "A1111 would silently skip this item" in message
    assert "'1e-3:-1'" in message and "Fix:" in message


@pytest.mark.parametrize(
    "field, behaviour",
    [("learning_rate", "stop training at its next batch"), ("clip_grad_value", "keep it until the end")],
)
def test_decreasing_steps_error_shows_a1111_behaviour_and_sorted_fix(field, behaviour):
    with pytest.raises(ValueError) as info:
        parse_schedule("1e-3:100, 1e-4:50, 1e-5", 1000, field=field)
    message = str(info.value)
    assert message.startswith(field)
    assert "previous step is 100, this one is 50" in message
    assert f"A1111 would silently switch to" in message and behaviour in message
    assert "e.g. '1e-4:50, 1e-3:100, 1e-5'" in message


def test_ignored_items_are_kept_for_the_report():
    schedule = parse_schedule("1e-3:5, 1e-4:10, 5e-5:20", 5)
    assert schedule.ignored == ("1e-4:10", "5e-5:20")
    assert schedule.ignored_note == ("learning_rate: items 1e-4:10, 5e-5:20 come after the schedule reaches max "
                                     "steps (5) and are ignored")
    assert parse_schedule("1e-3:5, 1e-4:10", 10).ignored_note is None
