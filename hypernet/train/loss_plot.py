"""A loss chart as a PIL image: raw and smoothed loss with value ticks on the left, the learning
rate on a second axis with ticks on the right, step ticks below, event markers and rollback points.

`plot_layout` computes where everything goes (pure numbers, tested); `render_loss_plot` draws it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from PIL import Image, ImageDraw

from ..grid.image import load_font

RAW = (170, 190, 230)
SMOOTH = (20, 60, 160)
LR = (220, 120, 20)
EVENT = (200, 30, 30)
ROLLBACK = (200, 0, 120)
GRID = (228, 228, 228)
AXIS = (0, 0, 0)
EVENT_COLORS = {"rollback": ROLLBACK, "optimizer_reset": (120, 40, 160), "nan_skip": (150, 150, 150)}
TICK_COUNT = 6


SMOOTHING = 0.9  # the browser chart's too (web/hn_chart.js); tests/cases/smooth_loss.json holds both to it


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, debiased as TensorBoard's smoothing slider (the first point is
    the first loss, not pulled towards 0). Non-finite losses are skipped and stay NaN (a gap)."""
    out, average, count = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(float("nan"))
            continue
        average = weight * average + (1 - weight) * value
        count += 1
        out.append(average / (1 - weight ** count))
    return out


def nice_ticks(low: float, high: float, count: int = TICK_COUNT, integer: bool = False) -> list[float]:
    """About `count` round tick values (1, 2 or 5 x 10^k apart) inside [low, high], ends included
    when they are round; integer=True never gives fractional ticks (for steps)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return []
    if high == low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    ladder = [m * magnitude for m in (0.1, 0.2, 0.5, 1, 2, 5, 10)]
    index = next(i for i, m in enumerate(ladder) if m >= raw)
    while True:  # a finer round spacing when the range holds fewer than 3 ticks
        spacing = max(1, round(ladder[index])) if integer else ladder[index]
        first = math.ceil(low / spacing - 1e-9) * spacing
        ticks, value = [], first
        while value <= high + spacing * 1e-9:
            ticks.append(int(round(value)) if integer else round(value, 12))
            value = first + len(ticks) * spacing
        if len(ticks) >= 3 or index == 0 or (integer and spacing == 1):
            return ticks
        index -= 1


def format_tick(value: float) -> str:
    """Short, readable tick text: '0.125', '1e-05' -> '1e-5', '2500'."""
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    if abs(value) >= 1e-3 and abs(value) < 1e5:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _range(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12 * max(1.0, abs(high)):
        pad = abs(high) * 0.1 or 0.5
        return low - pad, high + pad
    pad = (high - low) * 0.05  # keep the lines off the frame
    return low - pad, high + pad


@dataclass
class PlotLayout:
    """Pixel positions of everything on the chart (x grows right, y grows down)."""

    box: tuple[int, int, int, int]  # left, top, right, bottom of the plot area
    step_ticks: list[tuple[int, float]] = field(default_factory=list)  # (step, x)
    loss_ticks: list[tuple[float, float]] = field(default_factory=list)  # (loss, y)
    lr_ticks: list[tuple[float, float]] = field(default_factory=list)  # (learning rate, y)
    events: list[tuple[int, str, float]] = field(default_factory=list)  # (step, kind, x)
    rollback_points: list[tuple[int, float, float]] = field(default_factory=list)  # (step, x, y)
    x_of: Callable[[float], float] | None = None
    y_loss: Callable[[float], float] | None = None
    y_lr: Callable[[float], float] | None = None


def _linear(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    return lambda v: start + (v - low) / (high - low) * (end - start)


def plot_layout(steps: Sequence[int], losses: Sequence[float], learning_rates: Sequence[float],
                events: Sequence[dict] = (), width: int = 768, height: int = 384) -> PlotLayout:
    """Where the ticks, events and rollback points of a chart of this data go."""
    left, right, top, bottom = 78, width - 78, 34, height - 44
    layout = PlotLayout((left, top, right, bottom))
    if not steps:
        return layout
    first, last = steps[0], max(steps[-1], steps[0] + 1)
    layout.x_of = _linear(first, last, left, right)
    loss_low, loss_high = _range(losses)
    lr_low, lr_high = _range(learning_rates)
    layout.y_loss = _linear(loss_low, loss_high, bottom, top)
    layout.y_lr = _linear(lr_low, lr_high, bottom, top)
    layout.step_ticks = [(s, layout.x_of(s)) for s in nice_ticks(first, last, TICK_COUNT + 1, integer=True)]
    layout.loss_ticks = [(v, layout.y_loss(v)) for v in nice_ticks(loss_low, loss_high)]
    layout.lr_ticks = [(v, layout.y_lr(v)) for v in nice_ticks(lr_low, lr_high)]
    smoothed = smooth(losses)
    for event in events:
        step = event.get("step")
        if not isinstance(step, (int, float)) or not first <= step <= last:
            continue
        kind = str(event.get("kind", "event"))
        x = layout.x_of(step)
        layout.events.append((int(step), kind, x))
        if kind == "rollback":
            # The point training went back to: the smoothed loss at the last step at or before it.
            known = [(s, v) for s, v in zip(steps, smoothed) if s <= step and math.isfinite(v)]
            if known:
                layout.rollback_points.append((int(step), x, layout.y_loss(known[-1][1])))
    return layout


def render_loss_plot(steps: Sequence[int], losses: Sequence[float], learning_rates: Sequence[float],
                     events: Sequence[dict] = (), width: int = 768, height: int = 384) -> Image.Image:
    """Draw the chart; with no data it says so instead of drawing empty axes."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = load_font(max(10, height // 30))
    half = getattr(font, "size", 10) / 2
    layout = plot_layout(steps, losses, learning_rates, events, width, height)
    left, top, right, bottom = layout.box
    if not steps:
        draw.rectangle([left, top, right, bottom], outline=AXIS)
        draw.text((left + 10, top + 10), "no training steps yet", fill=AXIS, font=font)
        return image
    tick = 5
    for step, x in layout.step_ticks:
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.line([(x, bottom), (x, bottom + tick)], fill=AXIS)
        text = format_tick(step)
        draw.text((x - draw.textlength(text, font=font) / 2, bottom + tick + 2), text, fill=AXIS, font=font)
    for value, y in layout.loss_ticks:
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.line([(left - tick, y), (left, y)], fill=SMOOTH)
        text = format_tick(value)
        draw.text((left - tick - 3 - draw.textlength(text, font=font), y - half), text, fill=SMOOTH,
                  font=font)
    for value, y in layout.lr_ticks:
        draw.line([(right, y), (right + tick, y)], fill=LR)
        draw.text((right + tick + 3, y - half), format_tick(value), fill=LR, font=font)
    draw.rectangle([left, top, right, bottom], outline=AXIS)

    def polyline(values, to_y, color, line_width):
        points = [(layout.x_of(s), to_y(v)) for s, v in zip(steps, values) if math.isfinite(v)]
        if len(points) >= 2:
            draw.line(points, fill=color, width=line_width)
        elif points:
            x, y = points[0]
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)

    polyline(losses, layout.y_loss, RAW, 1)
    polyline(learning_rates, layout.y_lr, LR, 1)
    polyline(smooth(losses), layout.y_loss, SMOOTH, 2)
    for _, kind, x in layout.events:
        color = EVENT_COLORS.get(kind, EVENT)
        for y in range(top, bottom, 8):  # dashed, so the curves stay readable under it
            draw.line([(x, y), (x, min(y + 4, bottom))], fill=color, width=1)
    for _, x, y in layout.rollback_points:
        r = 6
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=ROLLBACK, outline=AXIS)
    draw.text((left, 6), "loss (light: raw, dark: smoothed)   learning rate (orange, right)   "
              "events (dashed)   rollback (diamond)", fill=AXIS, font=font)
    draw.text((left + (right - left) / 2 - 14, height - 2 * half - 4), "step", fill=AXIS, font=font)
    return image
