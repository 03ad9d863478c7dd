"""The XY grid's plan: which settings every cell uses, from the base settings and two parsed axes.

The node parses the axes with `values`; this module turns them into one `CellSettings` per grid
position (row-major: Y outer, X inner) and checks that the two axes make sense together.

Rules for the hypernetwork and strength axes:
* a hypernetwork axis replaces the connected `hypernetwork` input in every cell; its `none`
  value is the plain model; two hypernetwork axes stack (X's network first, then Y's);
* a strength axis varies the strength of the axis network when the other axis is a
  hypernetwork axis, else the strength of the connected network (there must be one);
* prompt S/R may be on both axes (X's replacement first, then Y's); any other type on both
  axes is refused, because one would silently override the other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .values import AXIS_LABELS, AxisType, AxisValues, apply_prompt_sr

CONNECTED = "<connected hypernetwork>"  # key of the network on the optional `hypernetwork` input
_STACKABLE = {AxisType.NONE, AxisType.PROMPT_SR, AxisType.HYPERNETWORK}


@dataclass(frozen=True)
class SamplingSettings:
    """What a plain sampling graph is built from (shared by the node's widgets and each cell)."""

    positive: str
    negative: str
    width: int
    height: int
    seed: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    clip_skip: int


@dataclass(frozen=True)
class CellSettings(SamplingSettings):
    """Everything one cell is sampled with; `networks` = ((file name or CONNECTED, strength), ...)."""

    networks: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["networks"] = [list(entry) for entry in self.networks]
        return data


@dataclass(frozen=True)
class BaseSettings(SamplingSettings):
    """The node's own widgets: the settings of every cell before the axes change them."""

    strength: float = 1.0
    has_connected: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_axes(x: AxisValues, y: AxisValues, has_connected: bool) -> None:
    """Refuse axis combinations that cannot mean anything, with the fix in the message."""
    if x.axis_type is y.axis_type and x.axis_type not in _STACKABLE:
        raise ValueError(
            f"X and Y axes are both {x.axis_type.value!r}: the Y value would override the X value in "
            f"every cell; use one {x.axis_type.value!r} axis (the same type on both axes works for "
            "prompt_sr and hypernetwork only)")
    types = {x.axis_type, y.axis_type}
    if AxisType.STRENGTH in types and AxisType.HYPERNETWORK not in types and not has_connected:
        axis = x if x.axis_type is AxisType.STRENGTH else y
        raise ValueError(
            f"{axis.name} axis (strength): there is no hypernetwork whose strength could vary; connect "
            "the optional hypernetwork input or put a hypernetwork axis on the other axis")


def _apply_value(state: dict[str, Any], axis: AxisValues, index: int) -> None:
    kind, value = axis.axis_type, axis.values[index]
    if kind is AxisType.NONE:
        return
    if kind is AxisType.HYPERNETWORK:
        state["hn_axis"] = True
        if value is not None:
            state["files"].append(value)
    elif kind is AxisType.STRENGTH:
        state["strength"] = float(value)
    elif kind is AxisType.PROMPT_SR:
        search = axis.values[0]
        state["positive"] = apply_prompt_sr(state["positive"], search, value)
        state["negative"] = apply_prompt_sr(state["negative"], search, value)
    elif kind is AxisType.SEED:
        state["seed"] = int(value)
    elif kind is AxisType.STEPS:
        state["steps"] = int(value)
    elif kind is AxisType.CFG:
        state["cfg"] = float(value)
    elif kind is AxisType.SAMPLER:
        state["sampler_name"] = value
    elif kind is AxisType.SCHEDULER:
        state["scheduler"] = value
    elif kind is AxisType.CLIP_SKIP:
        state["clip_skip"] = int(value)
    else:  # a new AxisType without a rule here must not be ignored silently
        raise ValueError(f"{axis.name} axis: type {kind.value!r} is not supported by the XY grid")


def cell_settings(base: BaseSettings, x: AxisValues, xi: int, y: AxisValues, yi: int) -> CellSettings:
    """The settings of the cell in column `xi`, row `yi`."""
    state: dict[str, Any] = {
        "positive": base.positive, "negative": base.negative, "seed": base.seed, "steps": base.steps,
        "cfg": base.cfg, "sampler_name": base.sampler_name, "scheduler": base.scheduler,
        "clip_skip": base.clip_skip, "strength": base.strength, "files": [], "hn_axis": False,
    }
    _apply_value(state, x, xi)
    _apply_value(state, y, yi)
    if state["hn_axis"]:
        networks = tuple((name, state["strength"]) for name in state["files"])
    elif base.has_connected:
        networks = ((CONNECTED, state["strength"]),)
    else:
        networks = ()
    return CellSettings(
        positive=state["positive"], negative=state["negative"], width=base.width, height=base.height,
        seed=state["seed"], steps=state["steps"], cfg=state["cfg"], sampler_name=state["sampler_name"],
        scheduler=state["scheduler"], clip_skip=state["clip_skip"], networks=networks)


def plan_cells(base: BaseSettings, x: AxisValues, y: AxisValues) -> list[CellSettings]:
    """Every cell's settings, row-major (row = Y value, column = X value)."""
    check_axes(x, y, base.has_connected)
    return [cell_settings(base, x, xi, y, yi) for yi in range(len(y)) for xi in range(len(x))]


def axis_title(axis: AxisValues) -> str:
    """The title drawn beside an axis: its own (a checkpoint axis names its files), else its type's name."""
    return axis.title or AXIS_LABELS[axis.axis_type]


def files_on_axes(*axes: AxisValues) -> list[str]:
    """Hypernetwork file names used by hypernetwork axes, each once, in axis order."""
    names: list[str] = []
    for axis in axes:
        if axis.axis_type is AxisType.HYPERNETWORK:
            for value in axis.values:
                if value is not None and value not in names:
                    names.append(value)
    return names

