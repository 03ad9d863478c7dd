"""A loss chart as a PIL image: raw loss, smoothed loss, learning rate on a second axis, events."""
from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw

from .grid_image import load_font

RAW = (170, 190, 230)
SMOOTH = (20, 60, 160)
LR = (220, 120, 20)
EVENT = (200, 30, 30)


def smooth(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average that skips non-finite values."""
    out, ema = [], None
    for value in values:
        if math.isfinite(value):
            ema = value if ema is None else (1 - alpha) * ema + alpha * value
        out.append(ema if ema is not None else float("nan"))
    return out


def _scale(values: Sequence[float], top: int, bottom: int) -> tuple[callable, float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return (lambda v: bottom - (v - low) / (high - low) * (bottom - top)), low, high


def render_loss_plot(steps: Sequence[int], losses: Sequence[float], learning_rates: Sequence[float],
                     events: Sequence[dict] = (), width: int = 768, height: int = 384) -> Image.Image:
    """Draw the chart; with no data it says so instead of drawing empty axes."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = load_font(max(10, height // 28))
    left, right, top, bottom = 70, width - 70, 30, height - 40
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    if not steps:
        draw.text((left + 10, top + 10), "no training steps yet", fill=(0, 0, 0), font=font)
        return image
    first, last = steps[0], max(steps[-1], steps[0] + 1)
    x_of = lambda s: left + (s - first) / (last - first) * (right - left)  # noqa: E731
    y_loss, low, high = _scale(losses, top, bottom)
    y_lr, lr_low, lr_high = _scale(learning_rates, top, bottom)

    def polyline(values, to_y, color, line_width):
        points = [(x_of(s), to_y(v)) for s, v in zip(steps, values) if math.isfinite(v)]
        if len(points) >= 2:
            draw.line(points, fill=color, width=line_width)
        elif points:
            x, y = points[0]
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)

    polyline(losses, y_loss, RAW, 1)
    polyline(smooth(losses), y_loss, SMOOTH, 2)
    polyline(learning_rates, y_lr, LR, 1)
    for event in events:
        x = x_of(min(max(event.get("step", first), first), last))
        draw.line([(x, top), (x, bottom)], fill=EVENT, width=1)
    draw.text((left, 6), f"loss (blue, smoothed dark)   learning rate (orange)   events (red)", fill=(0, 0, 0), font=font)
    draw.text((4, top), f"{high:.4g}", fill=SMOOTH, font=font)
    draw.text((4, bottom - 12), f"{low:.4g}", fill=SMOOTH, font=font)
    draw.text((right + 4, top), f"{lr_high:.2g}", fill=LR, font=font)
    draw.text((right + 4, bottom - 12), f"{lr_low:.2g}", fill=LR, font=font)
    draw.text((left, bottom + 8), f"step {first}", fill=(0, 0, 0), font=font)
    draw.text((right - 80, bottom + 8), f"step {steps[-1]}", fill=(0, 0, 0), font=font)
    return image
