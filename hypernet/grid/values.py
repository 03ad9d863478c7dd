"""X/Y grid axis values: A1111's value syntax, typed per axis, validated up front.

Value text is CSV (quotes allowed; newlines also separate; empty values are ignored). Numeric
axes accept A1111 ranges in each value:

* `1-5` -> 1, 2, 3, 4, 5 (inclusive; `5-1` counts down)
* `1-10 (+3)` -> 1, 4, 7, 10 (step; the sign must point from start to end)
* `1-10 [4]` -> 4 evenly spaced values 1, 4, 7, 10 (cast to int on int axes, as A1111)
* floats and negatives: `0-1 (+0.25)`, `-0.5-0.5 [5]`, `-5--1`, single `-1`

Every bad value raises `ValueError` naming the axis and the value.
"""
from __future__ import annotations

import csv
import dataclasses
import enum
import fnmatch
import io
import logging
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

logger = logging.getLogger(__name__)

MAX_VALUES_PER_AXIS = 1000
DEFAULT_MAX_CELLS = 400
DEFAULT_MAX_MEGAPIXELS = 200.0  # A1111's img_max_size_mp default
SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF  # ComfyUI's seed range
_LARGEST_INT = 2**70  # beyond every axis's range; keeps range arithmetic within floats
RANDOM_SEED_MAX = 0xFFFF_FFFF  # random seeds drawn like A1111 (32-bit)
HYPERNETWORK_EXTENSIONS = (".pt", ".safetensors", ".hns")  # .hns: MonkeyPatch compositions

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE_RE = re.compile(
    rf"^\s*(?P<start>{_NUM})\s*-\s*(?P<end>{_NUM})\s*"
    rf"(?:\(\s*(?P<step>{_NUM})\s*\)|\[\s*(?P<count>\d+)\s*\])?\s*$"
)
_STEP_SUFFIX_RE = re.compile(r"-(\d+)$")
_GLOB_CHARS = set("*?[")


class AxisType(str, enum.Enum):
    """What a grid axis varies."""

    NONE = "none"
    HYPERNETWORK = "hypernetwork"
    STRENGTH = "strength"
    SEED = "seed"
    STEPS = "steps"
    CFG = "cfg"
    SAMPLER = "sampler"
    SCHEDULER = "scheduler"
    PROMPT_SR = "prompt_sr"
    CLIP_SKIP = "clip_skip"


AXIS_LABELS: dict[AxisType, str] = {
    AxisType.NONE: "",
    AxisType.HYPERNETWORK: "Hypernetwork",
    AxisType.STRENGTH: "Strength",
    AxisType.SEED: "Seed",
    AxisType.STEPS: "Steps",
    AxisType.CFG: "CFG",
    AxisType.SAMPLER: "Sampler",
    AxisType.SCHEDULER: "Scheduler",
    AxisType.PROMPT_SR: "Prompt S/R",
    AxisType.CLIP_SKIP: "Clip skip",
}


@dataclass(frozen=True)
class AxisContext:
    """What axis parsers may need besides the text.

    `hypernetwork_files`: relative file names available (e.g. from the hypernetworks folder);
    `step_lookup(name)` may return the trained step stored in a file (its `step` key) or None;
    `rng` draws random seeds for `-1` (a fresh unseeded Random when None);
    `keep_random_seeds` keeps `-1` unresolved (A1111's "Keep -1 for seeds").
    """

    samplers: Sequence[str] = ()
    schedulers: Sequence[str] = ()
    prompt: str = ""
    negative_prompt: str = ""
    hypernetwork_files: Sequence[str] = ()
    step_lookup: Optional[Callable[[str], Optional[int]]] = None
    rng: Optional[random.Random] = None
    keep_random_seeds: bool = False


@dataclass(frozen=True)
class AxisValues:
    """Parsed axis: typed values and the label shown for each (seeds already resolved)."""

    axis_type: AxisType
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    text: str = ""
    name: str = "X"
    # The axis title drawn beside the labels ('' = the axis type's name); a checkpoint axis puts
    # the run's file names here so that its cell labels can be short ('step 500').
    title: str = ""

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.axis_type.value,
            "text": self.text,
            "values": list(self.values),
            "labels": list(self.labels),
            "title": self.title or AXIS_LABELS[self.axis_type],
        }


def _error(axis: str, axis_type: AxisType, value: str, fix: str) -> ValueError:
    return ValueError(f"{axis} axis ({axis_type.value}): bad value {value!r}: {fix}")


def split_values(text: str) -> list[str]:
    """CSV split as A1111: quotes allowed, newlines separate too, blanks dropped."""
    if not isinstance(text, str):
        raise ValueError(f"axis values must be text, got {type(text).__name__}")
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [cell.strip() for row in rows for cell in row if cell.strip()]


# ---------------------------------------------------------------- numbers and ranges
def _to_number(raw: str, kind: type) -> float | int:
    raw = raw.strip()
    if kind is int:
        value = int(raw)
        if abs(value) > _LARGEST_INT:
            raise ValueError(f"{raw[:30]}... is too large a number")
        return value
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _clean(value: float) -> float:
    """Round away float noise from ranges (0.1 * 3 -> 0.3)."""
    return round(value, 10) + 0.0


def _expand_one(raw: str, kind: type) -> list[float | int]:
    match = _RANGE_RE.match(raw)
    if match is None:
        return [_to_number(raw, kind)]
    start = _to_number(match["start"], kind)
    end = _to_number(match["end"], kind)
    if match["count"] is not None:
        count = int(match["count"])
        if count < 1:
            raise ValueError("the count in [n] must be >= 1")
        if count > MAX_VALUES_PER_AXIS:
            raise ValueError(f"at most {MAX_VALUES_PER_AXIS} values per axis")
        if count == 1:
            return [start]
        points = [start + (end - start) * i / (count - 1) for i in range(count)]
        if not all(math.isfinite(p) for p in points):
            raise ValueError(f"the range {start}..{end} is too wide to divide; use smaller numbers")
        return [int(p) for p in points] if kind is int else [_clean(p) for p in points]
    step = _to_number(match["step"], kind) if match["step"] is not None else (1 if end >= start else -1)
    if step == 0:
        raise ValueError("the step in (+s) must not be 0")
    if (end - start) * step < 0:
        raise ValueError(f"the step {step} points away from the end {end}; use {-step:+}")
    span = (end - start) / step  # a float: may be inf for a tiny step or a huge range
    if not math.isfinite(span) or span + 1 > MAX_VALUES_PER_AXIS:
        raise ValueError(f"the range {start}..{end} in steps of {step} gives "
                         f"{'too many' if not math.isfinite(span) else math.floor(span + 1e-9) + 1} values, "
                         f"at most {MAX_VALUES_PER_AXIS} per axis; use a larger step")
    n = math.floor(span + 1e-9) + 1
    if kind is int:
        return [start + i * step for i in range(n)]
    return [_clean(start + i * step) for i in range(n)]


def parse_numbers(
    text: str,
    kind: type = float,
    *,
    axis: str = "X",
    axis_type: AxisType = AxisType.STRENGTH,
    minimum: float | None = None,
    maximum: float | None = None,
) -> list[float | int]:
    """Comma values with A1111 ranges -> numbers of `kind` (int or float), range-checked."""
    what = "integers" if kind is int else "numbers"
    syntax = f"expected {what} or ranges like '1-5', '1-10 (+3)', '1-10 [4]'"
    out: list[float | int] = []
    for raw in split_values(text):
        try:
            expanded = _expand_one(raw, kind)
        except ValueError as exc:
            detail = str(exc)
            if detail.startswith(("invalid literal", "could not convert", "not finite")):
                detail = syntax
            raise _error(axis, axis_type, raw, detail) from None
        for value in expanded:
            if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
                bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
                raise _error(axis, axis_type, raw, f"{value} is out of range; values must be {bounds}")
        out.extend(expanded)
    if len(out) > MAX_VALUES_PER_AXIS:
        raise ValueError(f"{axis} axis ({axis_type.value}): {len(out)} values, at most {MAX_VALUES_PER_AXIS}")
    return out


def format_number(value: float | int) -> str:
    """Label form of a number: floats rounded to 8 digits (A1111), no trailing '.0'."""
    if isinstance(value, int):
        return str(value)
    text = repr(round(float(value), 8))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------- choice lists
def match_choice(value: str, choices: Sequence[str], *, axis: str, axis_type: AxisType) -> str:
    """Exact, then case-insensitive match of `value` in `choices` (returns the canonical name)."""
    if not choices:
        raise _error(axis, axis_type, value, f"no {axis_type.value} names are available to match")
    if value in choices:
        return value
    folded = [c for c in choices if c.lower() == value.lower()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(list(choices)[:40]) + (" ..." if len(choices) > 40 else "")
    raise _error(axis, axis_type, value, f"not a known {axis_type.value}; choose from: {shown}")


# ---------------------------------------------------------------- hypernetwork files
def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def _strip_extension(name: str) -> str:
    for ext in HYPERNETWORK_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def step_from_name(name: str) -> Optional[int]:
    """Training step from a periodic-copy name `name-<step>.pt` (None when there is none)."""
    stem = _strip_extension(name.replace("\\", "/").rsplit("/", 1)[-1])
    match = _STEP_SUFFIX_RE.search(stem)
    return int(match.group(1)) if match else None


def hypernetwork_sort_key(
    name: str, step_lookup: Optional[Callable[[str], Optional[int]]] = None
) -> tuple:
    """Order files by base name (naturally), then training step (stored `step` first, else the
    name's `-<step>` suffix); files with no known step come last within their base name."""
    stem = _strip_extension(name.replace("\\", "/"))
    base = _STEP_SUFFIX_RE.sub("", stem)
    step = step_lookup(name) if step_lookup is not None else None
    if step is None:
        step = step_from_name(name)
    return (_natural_key(base), 0 if step is not None else 1, step or 0, _natural_key(name))


def resolve_hypernetworks(
    values: Sequence[str],
    available: Sequence[str],
    *,
    step_lookup: Optional[Callable[[str], Optional[int]]] = None,
    axis: str = "X",
) -> list[Optional[str]]:
    """Names/globs -> relative file names from `available` (`none` -> None = no hypernetwork).

    A value matches, in order: an exact relative name; the name without extension; a unique
    file name (case-insensitive, with or without extension). Globs (`mynet/*.pt`, `*-?000*`)
    match relative names case-insensitively and are sorted by `hypernetwork_sort_key`.
    Only names from `available` can come out, so no value can reach outside that folder.
    """
    axis_type = AxisType.HYPERNETWORK
    norm = {a.replace("\\", "/"): a for a in available}
    resolved: list[Optional[str]] = []
    for raw in values:
        value = raw.strip().replace("\\", "/")
        if value.lower() in ("none", ""):
            resolved.append(None)
            continue
        if _GLOB_CHARS & set(value):
            pattern = value.lower()
            hits = [orig for rel, orig in norm.items() if fnmatch.fnmatchcase(rel.lower(), pattern)]
            if not hits:
                raise _error(axis, axis_type, raw, "the pattern matches no hypernetwork file; "
                             f"{_available_hint(available)}")
            resolved.extend(sorted(hits, key=lambda n: hypernetwork_sort_key(n, step_lookup)))
            continue
        resolved.append(_match_one(raw, value, norm, available, axis))
    return resolved


def _available_hint(available: Sequence[str]) -> str:
    if not available:
        return ("no hypernetwork files were found; train one first (the 'Train a hypernetwork' template) or put "
                ".pt files in the hypernetworks folder")
    shown = ", ".join(list(available)[:20]) + (" ..." if len(available) > 20 else "")
    return f"available: {shown}"


def _match_one(raw: str, value: str, norm: dict[str, str], available: Sequence[str], axis: str) -> str:
    if value in norm:
        return norm[value]
    lowered = value.lower()
    tiers = (
        lambda rel: rel.lower() == lowered,
        lambda rel: _strip_extension(rel).lower() == lowered,
        lambda rel: rel.rsplit("/", 1)[-1].lower() == lowered,
        lambda rel: _strip_extension(rel.rsplit("/", 1)[-1]).lower() == lowered,
    )
    for tier in tiers:
        hits = [orig for rel, orig in norm.items() if tier(rel)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise _error(axis, AxisType.HYPERNETWORK, raw,
                         f"ambiguous, matches {', '.join(sorted(hits))}; give the folder too")
    raise _error(axis, AxisType.HYPERNETWORK, raw, f"no such hypernetwork file; {_available_hint(available)}")


# ---------------------------------------------------------------- seeds, prompt S/R
def resolve_seeds(seeds: Sequence[int], rng: Optional[random.Random] = None, keep_random: bool = False) -> list[int]:
    """Replace each -1 by a random seed drawn once from `rng` (unless `keep_random`)."""
    if keep_random:
        return list(seeds)
    rng = rng if rng is not None else random.Random()
    return [rng.randrange(RANDOM_SEED_MAX + 1) if s == -1 else s for s in seeds]


def apply_prompt_sr(text: str, search: str, replacement: str) -> str:
    """Prompt S/R for one cell: every occurrence of `search` replaced."""
    return text.replace(search, replacement)


# ---------------------------------------------------------------- per-type parsers
def _parse_none(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return [None]


def _parse_strength(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return parse_numbers(text, float, axis=axis, axis_type=AxisType.STRENGTH, minimum=-10.0, maximum=10.0)


def _parse_cfg(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return parse_numbers(text, float, axis=axis, axis_type=AxisType.CFG, minimum=0.0, maximum=100.0)


def _parse_steps(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return parse_numbers(text, int, axis=axis, axis_type=AxisType.STEPS, minimum=1, maximum=10000)


def _parse_seed(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    seeds = parse_numbers(text, int, axis=axis, axis_type=AxisType.SEED, minimum=-1, maximum=SEED_MAX)
    return resolve_seeds(seeds, ctx.rng, ctx.keep_random_seeds)


def _parse_clip_skip(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    values = parse_numbers(text, int, axis=axis, axis_type=AxisType.CLIP_SKIP, minimum=-24, maximum=24)
    for v in values:
        if v == 0:
            raise _error(axis, AxisType.CLIP_SKIP, "0", "clip skip counts from 1 (1 = last layer, 2 = skip one)")
    # ComfyUI-style negatives (-2) are accepted and shown A1111-style (2).
    return [abs(v) for v in values]


def _parse_sampler(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return [match_choice(v, ctx.samplers, axis=axis, axis_type=AxisType.SAMPLER) for v in split_values(text)]


def _parse_scheduler(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return [match_choice(v, ctx.schedulers, axis=axis, axis_type=AxisType.SCHEDULER) for v in split_values(text)]


def _parse_prompt_sr(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    values = split_values(text)
    if not values:
        return values
    search = values[0]
    if search not in ctx.prompt and search not in ctx.negative_prompt:
        raise _error(axis, AxisType.PROMPT_SR, search,
                     "the first value is the text to search for and must occur in the prompt "
                     "or the negative prompt")
    return values


def _parse_hypernetwork(text: str, ctx: AxisContext, axis: str) -> list[Any]:
    return resolve_hypernetworks(split_values(text), ctx.hypernetwork_files,
                                 step_lookup=ctx.step_lookup, axis=axis)


AXIS_PARSERS: dict[AxisType, Callable[[str, AxisContext, str], list[Any]]] = {
    AxisType.NONE: _parse_none,
    AxisType.HYPERNETWORK: _parse_hypernetwork,
    AxisType.STRENGTH: _parse_strength,
    AxisType.SEED: _parse_seed,
    AxisType.STEPS: _parse_steps,
    AxisType.CFG: _parse_cfg,
    AxisType.SAMPLER: _parse_sampler,
    AxisType.SCHEDULER: _parse_scheduler,
    AxisType.PROMPT_SR: _parse_prompt_sr,
    AxisType.CLIP_SKIP: _parse_clip_skip,
}


def axis_type_from(value: AxisType | str) -> AxisType:
    """`AxisType` from its value (`"seed"`) or label (`"Seed"`), case-insensitive."""
    if isinstance(value, AxisType):
        return value
    key = str(value).strip().lower()
    for t in AxisType:
        if key in (t.value, AXIS_LABELS[t].lower()):
            return t
    raise ValueError(f"unknown axis type {value!r}; choose one of {', '.join(t.value for t in AxisType)}")


def format_label(axis_type: AxisType, value: Any) -> str:
    """Cell label: 'Seed: 5', 'CFG: 7.5'; sampler, scheduler and S/R show the bare value;
    a hypernetwork shows its relative name without extension ('none' for no net)."""
    if axis_type is AxisType.NONE:
        return ""
    if axis_type is AxisType.HYPERNETWORK:
        return "none" if value is None else _strip_extension(str(value).replace("\\", "/"))
    if axis_type in (AxisType.SAMPLER, AxisType.SCHEDULER, AxisType.PROMPT_SR):
        return str(value)
    shown = format_number(value) if isinstance(value, (int, float)) else str(value)
    return f"{AXIS_LABELS[axis_type]}: {shown}"


_LEGEND_FILES = 6


def checkpoint_axis_labels(
    values: Sequence[Optional[str]], step_lookup: Optional[Callable[[str], Optional[int]]] = None
) -> Optional[tuple[tuple[str, ...], str]]:
    """('step N' labels, title naming the files) when every file on a hypernetwork axis is a
    checkpoint of one run (same base name, distinct known steps); None otherwise. The run's final
    file (no `-<step>` in its name) may hold the same step as its last checkpoint: 'step N (final)'."""
    files = [(v, _strip_extension(v.replace("\\", "/"))) for v in values if v is not None]
    if not files:
        return None
    bases, steps, finals = set(), {}, set()
    for name, relative in files:
        step = step_lookup(name) if step_lookup is not None else None
        if step is None:
            step = step_from_name(name)
        if step is None:
            return None
        bases.add(_STEP_SUFFIX_RE.sub("", relative.rsplit("/", 1)[-1]).lower())
        steps[name] = step
        if step_from_name(name) is None:
            finals.add(name)
    periodic = [steps[name] for name in steps if name not in finals]
    if len(bases) != 1 or len(finals) > 1 or len(set(periodic)) != len(periodic):
        return None
    shared = {name for name in finals if steps[name] in periodic}
    names = {name: f"step {steps[name]}" + (" (final)" if name in shared else "") for name in steps}
    labels = tuple("none" if v is None else names[v] for v in values)
    return labels, f"{AXIS_LABELS[AxisType.HYPERNETWORK]}: {_checkpoint_legend(files, steps, names)}"


def _checkpoint_legend(files: Sequence[tuple[str, str]], steps: dict[str, int], names: dict[str, str]) -> str:
    """`run/run-<step>` when every file is named `<prefix><step>` with one prefix (the usual
    periodic copies), else each `step N = file` (the first few)."""
    prefixes = {relative[: len(relative) - len(str(steps[name]))] for name, relative in files
                if relative.endswith(str(steps[name]))}
    if len(prefixes) == 1 and all(relative.endswith(str(steps[name])) for name, relative in files):
        return f"{prefixes.pop()}<step>"
    shown = [f"{names[name]} = {relative}" for name, relative in files[:_LEGEND_FILES]]
    more = f"; +{len(files) - _LEGEND_FILES} more" if len(files) > _LEGEND_FILES else ""
    return "; ".join(shown) + more


BEST_MARK = " (best val)"


def mark_best_checkpoint(axis: AxisValues, val_loss_of: Callable[[str], Optional[float]]) -> AxisValues:
    """A hypernetwork axis with the lowest held-out validation loss (stored in training's files)
    marked in its label; unchanged when fewer than two of its files carry one."""
    if axis.axis_type is not AxisType.HYPERNETWORK:
        return axis
    losses = [None if v is None else val_loss_of(v) for v in axis.values]
    known = [v for v in losses if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(known) < 2:
        return axis
    lowest = min(known)
    labels = tuple(label + BEST_MARK if loss == lowest else label for label, loss in zip(axis.labels, losses))
    return dataclasses.replace(axis, labels=labels)


def parse_axis(
    axis_type: AxisType | str,
    text: str,
    context: Optional[AxisContext] = None,
    *,
    name: str = "X",
) -> AxisValues:
    """Parse one axis's value text with the parser registered for its type."""
    kind = axis_type_from(axis_type)
    ctx = context if context is not None else AxisContext()
    values = AXIS_PARSERS[kind](text, ctx, name)
    if not values:
        raise ValueError(f"{name} axis ({kind.value}): no values given; enter comma-separated values")
    labels, title = tuple(format_label(kind, v) for v in values), ""
    if kind is AxisType.HYPERNETWORK:
        checkpoints = checkpoint_axis_labels(values, ctx.step_lookup)
        if checkpoints is not None:
            labels, title = checkpoints
    return AxisValues(axis_type=kind, values=tuple(values), labels=labels, text=text, name=name, title=title)


# ---------------------------------------------------------------- size guard
def check_grid_size(
    n_cells: int,
    width: int,
    height: int,
    *,
    max_cells: int = DEFAULT_MAX_CELLS,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> None:
    """Refuse grids with too many cells or too many pixels before anything is generated."""
    if n_cells < 1:
        raise ValueError(f"the grid has {n_cells} cells; every axis needs at least one value")
    if width < 1 or height < 1:
        raise ValueError(f"cell size {width}x{height} is invalid; width and height must be >= 1")
    if n_cells > max_cells:
        raise ValueError(
            f"the grid has {n_cells} cells, more than the limit of {max_cells}; use fewer values in "
            "x_values or y_values (or split the comparison into several grids)"
        )
    megapixels = n_cells * width * height / 1e6
    if megapixels > max_megapixels:
        raise ValueError(
            f"the grid would be {megapixels:.1f} megapixels ({n_cells} cells of {width}x{height}), "
            f"more than the limit of {max_megapixels:g}; use fewer values in x_values or y_values, or a "
            "smaller width and height"
        )
