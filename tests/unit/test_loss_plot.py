"""The loss chart PNG: readable value ticks on both axes and steps, smoothed line, learning rate,
event markers and rollback points."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hypernet.train.loss_plot import (LR, ROLLBACK, SMOOTH, format_tick, nice_ticks, plot_layout, render_loss_plot,
                                smooth)
from tests.support.node_js import call_js, load_cases, needs_node


def history(n=300):
    steps = list(range(1, n + 1))
    losses = [0.2 * math.exp(-s / 100) + 0.01 * ((s * 7919) % 13) / 13 for s in steps]
    rates = [1e-4 if s < 150 else 1e-5 for s in steps]
    events = [{"step": 150, "kind": "lr_change", "message": ""}, {"step": 200, "kind": "rollback", "message": ""}]
    return steps, losses, rates, events


@pytest.mark.parametrize("low, high, integer, expected", [
    (0, 1000, True, [0, 200, 400, 600, 800, 1000]),
    (1, 300, True, [100, 200, 300]),
    (0.005, 0.22, False, [0.05, 0.1, 0.15, 0.2]),
    (5.5e-6, 1.045e-4, False, [2e-05, 4e-05, 6e-05, 8e-05, 1e-04]),
])
def test_nice_ticks_are_round_values_inside_the_range(low, high, integer, expected):
    assert nice_ticks(low, high, 6, integer) == pytest.approx(expected)


@pytest.mark.parametrize("value, text", [(0, "0"), (2500, "2500"), (0.125, "0.125"), (1e-4, "1e-4"),
                                         (2.5e-6, "2.5e-6"), (12000.0, "12000")])
def test_tick_text_is_short(value, text):
    assert format_tick(value) == text


def test_layout_has_interior_ticks_on_all_three_axes_and_places_events():
    steps, losses, rates, events = history()
    layout = plot_layout(steps, losses, rates, events)
    left, top, right, bottom = layout.box
    for ticks in (layout.step_ticks, layout.loss_ticks, layout.lr_ticks):
        assert len(ticks) >= 3
    assert all(left <= x <= right for _, x in layout.step_ticks)
    assert all(top <= y <= bottom for _, y in layout.loss_ticks + layout.lr_ticks)
    # Larger losses are higher up (smaller y).
    ys = [y for _, y in layout.loss_ticks]
    assert ys == sorted(ys, reverse=True)
    assert [(step, kind) for step, kind, _ in layout.events] == [(150, "lr_change"), (200, "rollback")]
    [(step, x, y)] = layout.rollback_points
    assert step == 200 and x == pytest.approx(layout.x_of(200))
    assert y == pytest.approx(layout.y_loss(smooth(losses)[199]))


def _pixels_near(image, color, x, y, radius=3):
    array = np.asarray(image, np.int16)[int(y) - radius:int(y) + radius + 1, int(x) - radius:int(x) + radius + 1]
    return int((np.abs(array - np.array(color)).sum(axis=2) < 30).sum())


def test_rendered_chart_draws_tick_labels_curves_and_the_rollback_marker():
    steps, losses, rates, events = history()
    image = render_loss_plot(steps, losses, rates, events)
    layout = plot_layout(steps, losses, rates, events)
    left, top, right, bottom = layout.box
    array = np.asarray(image, np.int16)
    for _, y in layout.loss_ticks:  # a label left of the frame at every loss tick
        band = array[int(y) - 4:int(y) + 5, 5:left - 6]
        assert (np.abs(band - np.array(SMOOTH)).sum(axis=2) < 60).sum() > 3
    for _, y in layout.lr_ticks:  # and right of it at every learning-rate tick
        band = array[int(y) - 4:int(y) + 5, right + 8:image.width - 2]
        assert (np.abs(band - np.array(LR)).sum(axis=2) < 60).sum() > 3
    for _, x in layout.step_ticks:  # step numbers under the frame
        band = array[bottom + 6:bottom + 22, max(0, int(x) - 12):int(x) + 13]
        assert (band.max(axis=2) < 100).sum() > 3
    [(_, x, y)] = layout.rollback_points
    assert _pixels_near(image, ROLLBACK, x, y) > 10
    assert _pixels_near(image, LR, layout.x_of(50), layout.y_lr(1e-4), radius=2) > 0


def test_empty_history_says_so():
    image = render_loss_plot([], [], [])
    assert image.size == (768, 384) and plot_layout([], [], []).step_ticks == []


SMOOTH_CASES = load_cases("smooth_loss")


def _nan_for_null(values):
    return [math.nan if v is None else v for v in values]


@pytest.mark.parametrize("losses, smoothed", SMOOTH_CASES)
def test_smoothing_cases(losses, smoothed):
    got = smooth(_nan_for_null(losses))
    assert [None if math.isnan(v) else v for v in got] == pytest.approx(smoothed, abs=1e-9)


@needs_node
def test_the_browser_chart_smooths_like_the_png(tmp_path):
    got = call_js("hn_chart.js", "smooth", [[losses] for losses, _ in SMOOTH_CASES], tmp_path)
    for values, (_, smoothed) in zip(got, SMOOTH_CASES):
        assert values == pytest.approx(smoothed, abs=1e-9)
