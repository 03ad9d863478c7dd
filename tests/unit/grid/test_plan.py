"""The XY grid's cell plan without a host: order, stacking rules, refused axis pairs."""
from __future__ import annotations

import pytest

from hypernet.grid.plan import CONNECTED, BaseSettings, axis_title, files_on_axes, plan_cells
from hypernet.grid.values import AxisType, AxisValues


def base(**overrides) -> BaseSettings:
    values = dict(positive="a cat", negative="blurry", width=64, height=64, seed=1, steps=4, cfg=7.0,
                  sampler_name="euler", scheduler="normal", clip_skip=1, strength=1.0, has_connected=True)
    values.update(overrides)
    return BaseSettings(**values)


def axis(kind: AxisType, *values, name="X", title="") -> AxisValues:
    return AxisValues(kind, tuple(values), tuple(str(v) for v in values), name=name, title=title)


NONE = axis(AxisType.NONE, None, name="Y")


def test_cells_are_row_major_y_outer_x_inner():
    cells = plan_cells(base(), axis(AxisType.SEED, 5, 6), axis(AxisType.STEPS, 10, 20, name="Y"))
    assert [(c.seed, c.steps) for c in cells] == [(5, 10), (6, 10), (5, 20), (6, 20)]
    assert all(c.networks == ((CONNECTED, 1.0),) for c in cells)


def test_hypernetwork_axis_replaces_the_connected_network_and_none_is_the_plain_model():
    cells = plan_cells(base(strength=0.5), axis(AxisType.HYPERNETWORK, "a.pt", None), NONE)
    assert [c.networks for c in cells] == [(("a.pt", 0.5),), ()]


def test_two_hypernetwork_axes_stack_x_first_and_strength_applies_to_axis_networks():
    x = axis(AxisType.HYPERNETWORK, "a.pt")
    y = axis(AxisType.HYPERNETWORK, "b.pt", name="Y")
    assert plan_cells(base(), x, y)[0].networks == (("a.pt", 1.0), ("b.pt", 1.0))
    cells = plan_cells(base(), x, axis(AxisType.STRENGTH, 0.25, 0.75, name="Y"))
    assert [c.networks for c in cells] == [(("a.pt", 0.25),), (("a.pt", 0.75),)]


def test_prompt_sr_on_both_axes_applies_x_then_y_to_both_prompts():
    x = axis(AxisType.PROMPT_SR, "cat", "dog")
    y = axis(AxisType.PROMPT_SR, "dog", "wolf", name="Y")
    cells = plan_cells(base(negative="blurry cat"), x, y)
    assert [c.positive for c in cells] == ["a cat", "a dog", "a cat", "a wolf"], "X's dog is then Y's search"
    assert [c.negative for c in cells] == ["blurry cat", "blurry dog", "blurry cat", "blurry wolf"]


def test_same_type_on_both_axes_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="both 'seed'"):
        plan_cells(base(), axis(AxisType.SEED, 1), axis(AxisType.SEED, 2, name="Y"))


def test_strength_axis_without_any_network_is_refused():
    with pytest.raises(ValueError, match="connect the optional hypernetwork input"):
        plan_cells(base(has_connected=False), axis(AxisType.STRENGTH, 0.5), NONE)


def test_files_on_axes_lists_each_file_once_in_axis_order_and_titles_default_to_the_type():
    x = axis(AxisType.HYPERNETWORK, "b.pt", None, "a.pt")
    y = axis(AxisType.HYPERNETWORK, "a.pt", "c.pt", name="Y")
    assert files_on_axes(x, y) == ["b.pt", "a.pt", "c.pt"]
    assert axis_title(x) == "Hypernetwork"
    assert axis_title(axis(AxisType.HYPERNETWORK, "r-500.pt", title="run")) == "run"
