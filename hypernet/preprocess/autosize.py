"""A1111 "Auto-sized crop" (multicrop): pick an output size per image, centre-crop and resize.

Candidates are all (w, h) with w, h in range(min_dim, max_dim + 1, 64) (A1111 steps by 64 from
min_dim), min_area <= w*h <= max_area, and aspect error err = 1 - min(r, 1/r) <= threshold where
r = (image aspect) / (w / h). "maximize_area" picks the largest area (then the smallest error),
"minimize_error" the smallest error (then the largest area).
"""
from __future__ import annotations

from ..data.dataset import Transform, centre_box

OBJECTIVES = ("maximize_area", "minimize_error")
_CANDIDATE_STEP = 64


def normalise_objective(objective: str) -> str:
    """Accept A1111's labels ("Maximize area") as well as ours ("maximize_area")."""
    key = objective.strip().lower().replace(" ", "_")
    if key not in OBJECTIVES:
        raise ValueError(f"auto_size objective {objective!r} is not valid; use one of {OBJECTIVES}")
    return key


def choose_size(width: int, height: int, *, min_dim: int = 384, max_dim: int = 768,
                min_area: int = 64 * 64, max_area: int = 640 * 640,
                objective: str = "maximize_area", threshold: float = 0.1) -> tuple[int, int] | None:
    """Output size for a width x height image, or None when no candidate is within threshold."""
    objective = normalise_objective(objective)
    image_aspect = width / height
    best_key = None
    best: tuple[int, int] | None = None
    for w in range(min_dim, max_dim + 1, _CANDIDATE_STEP):
        for h in range(min_dim, max_dim + 1, _CANDIDATE_STEP):
            area = w * h
            if not (min_area <= area <= max_area):
                continue
            r = image_aspect / (w / h)
            err = 1 - min(r, 1 / r)
            if err > threshold:
                continue
            key = (area, -err) if objective == "maximize_area" else (-err, area)
            if best_key is None or key > best_key:
                best_key, best = key, (w, h)
    return best


def autosize_transform(width: int, height: int, size: tuple[int, int]) -> Transform:
    """Centre crop to the aspect of `size` (sub-pixel box) and resize to exactly `size`."""
    return Transform(centre_box(width, height, size[0] / size[1]), size)
