"""Auto focal point crop (A1111 autocrop), with numpy entropy and corner detectors.

The image is scaled to cover the crop; candidate points come from
- edges: Shi-Tomasi corners (up to 100, quality 0.04, min distance 6 % of the short side) on the
  grayscale image with the bottom 10 % painted grey (#999) to ignore watermarks; point = centroid;
- entropy: a crop-sized window slides along the long axis in 4 px steps; point = centre of the
  window whose grayscale histogram (32 levels) has the highest Shannon entropy;
- faces: needs a detector shipped inside an installed package; none is available with this
  pack's dependencies (PIL/numpy/torch), so face_weight is reported as unused.
The focal point is the weighted mean of the method points (weights renormalised over methods
that found something); the crop is centred on it and shifted back inside the frame.

Differences from A1111: entropy is the real Shannon entropy of a 32-level histogram (A1111 sums
-log2(p) over a dithered 1-bit histogram, which rewards nearly-uniform windows); a flat image
gives no entropy point instead of the left-most window; the image is scaled to *cover* the crop
(A1111 could produce a crop larger than a landscape image with a wider target).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

FACE_DETECTOR_AVAILABLE = False
FACES_NOTE = ("faces were not used: no face detector ships with the installed packages; "
              "focal points come from entropy + edges")

_ANALYSIS_MAX_SIDE = 1024
_ENTROPY_STEP = 4
_ENTROPY_LEVELS = 32
_MAX_CORNERS = 100
_CORNER_QUALITY = 0.04
_CORNER_MIN_DISTANCE = 0.06
_MAX_CORNER_CANDIDATES = 4000
_WATERMARK_BAND = 0.10
_WATERMARK_GREY = 153.0


@dataclass(frozen=True)
class FocalResult:
    """box: crop in source pixels (left, top, right, bottom); point: focal point in source pixels;
    points: the point each method found (source pixels), keyed "edges"/"entropy"."""

    box: tuple[float, float, float, float]
    point: tuple[float, float]
    points: dict[str, tuple[float, float]] = field(default_factory=dict)


def _pad(a: np.ndarray, value: float | None = None) -> np.ndarray:
    if value is None:
        return np.pad(a, 1, mode="edge")
    return np.pad(a, 1, mode="constant", constant_values=value)


def _box3(a: np.ndarray) -> np.ndarray:
    p = _pad(a)
    h, w = a.shape
    return sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))


def corner_points(gray: np.ndarray, max_corners: int = _MAX_CORNERS,
                  quality: float = _CORNER_QUALITY, min_distance: float = 1.0) -> np.ndarray:
    """Shi-Tomasi corners (min eigenvalue of the 3x3 structure tensor), strongest first, as (x, y)."""
    g = gray.astype(np.float32)
    h, w = g.shape
    if h < 3 or w < 3:
        return np.zeros((0, 2))
    p = _pad(g)
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    a, b, c = _box3(gx * gx), _box3(gx * gy), _box3(gy * gy)
    response = (a + c) / 2 - np.sqrt(((a - c) / 2) ** 2 + b * b)
    peak = float(response.max())
    if peak <= 1e-6:
        return np.zeros((0, 2))
    pr = _pad(response, -np.inf)
    local_max = np.max([pr[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    mask = (response >= local_max) & (response > quality * peak)
    idx = np.flatnonzero(mask)
    order = np.argsort(-response.ravel()[idx], kind="stable")[:_MAX_CORNER_CANDIDATES]
    ys, xs = np.divmod(idx[order], w)
    kept_x = np.empty(max_corners)
    kept_y = np.empty(max_corners)
    count = 0
    d2 = min_distance * min_distance
    for x, y in zip(xs.tolist(), ys.tolist()):
        if count and np.any((kept_x[:count] - x) ** 2 + (kept_y[:count] - y) ** 2 < d2):
            continue
        kept_x[count], kept_y[count] = x, y
        count += 1
        if count == max_corners:
            break
    return np.stack([kept_x[:count], kept_y[:count]], axis=1)


def entropy_point(gray: np.ndarray, win_w: int, win_h: int, step: int) -> tuple[float, float] | None:
    """Centre of the most detailed win_w x win_h window sliding along the long axis, or None."""
    h, w = gray.shape
    along_x = w - win_w >= h - win_h
    if (along_x and w <= win_w) or (not along_x and h <= win_h):
        return None
    q = (gray.astype(np.int64) * _ENTROPY_LEVELS) // 256
    lines = q if along_x else q.T  # rows of the sliding axis are the columns of `lines`
    length = lines.shape[1]
    window = win_w if along_x else win_h
    hist = np.bincount((np.arange(length)[None, :] * _ENTROPY_LEVELS + lines).ravel(),
                       minlength=length * _ENTROPY_LEVELS).reshape(length, _ENTROPY_LEVELS)
    cum = np.concatenate([np.zeros((1, _ENTROPY_LEVELS), np.int64), np.cumsum(hist, axis=0)])
    starts = np.arange(0, length - window + 1, step)
    counts = (cum[starts + window] - cum[starts]).astype(np.float64)
    probs = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(probs > 0, probs * np.log2(probs), 0.0).sum(axis=1)
    if float(ent.max() - ent.min()) < 1e-9:
        return None
    best = int(starts[int(np.argmax(ent))]) + window / 2
    return (best, h / 2) if along_x else (w / 2, best)


def focal_crop(img: Image.Image, crop_w: int, crop_h: int, *, face_weight: float = 0.9,
               entropy_weight: float = 0.15, edges_weight: float = 0.5) -> FocalResult:
    """Crop box (source pixels) of aspect crop_w:crop_h around the image's focal point.

    The caller resamples the box to crop_w x crop_h. face_weight is accepted for A1111 parity
    and ignored (FACE_DETECTOR_AVAILABLE is False).
    """
    iw, ih = img.size
    scale = max(crop_w / iw, crop_h / ih)
    pw, ph = max(crop_w, round(iw * scale)), max(crop_h, round(ih * scale))
    a = min(1.0, _ANALYSIS_MAX_SIDE / max(pw, ph))
    aw, ah = max(3, round(pw * a)), max(3, round(ph * a))
    gray = np.asarray(img.convert("L").resize((aw, ah), Image.Resampling.BILINEAR,
                                              reducing_gap=3.0), dtype=np.float32)
    to_pre = (pw / aw, ph / ah)  # analysis pixels -> prescaled pixels
    points: dict[str, tuple[float, float]] = {}
    weights: dict[str, float] = {}
    if edges_weight > 0:
        masked = gray.copy()
        masked[int(ah * (1 - _WATERMARK_BAND)):, :] = _WATERMARK_GREY
        corners = corner_points(masked, min_distance=_CORNER_MIN_DISTANCE * min(aw, ah))
        if len(corners):
            cx, cy = corners.mean(axis=0)
            points["edges"] = (float(cx) * to_pre[0], float(cy) * to_pre[1])
            weights["edges"] = edges_weight
    if entropy_weight > 0:
        step = max(1, round(_ENTROPY_STEP * a))
        found = entropy_point(gray, max(1, round(crop_w * a)), max(1, round(crop_h * a)), step)
        if found is not None:
            points["entropy"] = (found[0] * to_pre[0], found[1] * to_pre[1])
            weights["entropy"] = entropy_weight
    total = sum(weights.values())
    if total > 0:
        fx = sum(points[k][0] * weights[k] for k in weights) / total
        fy = sum(points[k][1] * weights[k] for k in weights) / total
    else:
        fx, fy = pw / 2, ph / 2
    left = min(max(round(fx - crop_w / 2), 0), pw - crop_w)
    top = min(max(round(fy - crop_h / 2), 0), ph - crop_h)
    sx, sy = pw / iw, ph / ih
    box = (left / sx, top / sy, min(iw, (left + crop_w) / sx), min(ih, (top + crop_h) / sy))
    src_points = {k: (p[0] / sx, p[1] / sy) for k, p in points.items()}
    return FocalResult(box, (fx / sx, fy / sy), src_points)

