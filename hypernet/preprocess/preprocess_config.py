"""Preprocess settings (A1111 "Preprocess images" + kohya buckets), validated on creation."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from .autosize import normalise_objective
from .buckets import validate_bucket_params
from .captions import caption_action

MODES = ("crop", "fit", "buckets", "keep")
IF_OUTPUT_EXISTS = ("refuse", "overwrite", "new_subfolder")
ON_BAD_FILE = ("skip", "fail")
MAX_WORKERS = 64


def _multiple_of_8(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high or value % 8:
        raise ValueError(f"{name}={value!r} must be a multiple of 8 between {low} and {high}")


def _unit(name: str, value: Any, high: float = 1.0) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= high:
        raise ValueError(f"{name}={value!r} must be a number between 0 and {high}")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name}={value!r} is not valid; use one of {', '.join(options)}")


@dataclass
class PreprocessConfig:
    """What Preprocess does to each dataset item.

    mode decides the output when none of split_oversized / focal_crop / auto_size produced one
    (A1111's "default resize"): "crop" scales to cover width x height and centre-crops; "fit"
    scales to fit inside and pads with pad_color; "buckets" uses kohya aspect buckets; "keep"
    keeps the size (only trimming to a multiple of 8 so the VAE accepts it).

    existing_caption combines the item's caption ("existing") with caption_text (the "new"
    caption, A1111's generated caption): ignore -> new only; copy -> existing only;
    existing_first -> existing + separator + new (A1111's "prepend"); new_first -> new +
    separator + existing (A1111's "append", still accepted). Empty parts are dropped; the result
    is stripped.

    keep_alpha writes an output folder's PNGs as RGBA when the source has a (not fully opaque)
    alpha channel, the alpha moved through the same steps as the pixels and the colours under it
    kept; off, they are composited on white (RGB) as before.
    """

    width: int = 512
    height: int = 512
    mode: str = "crop"
    bucket_min: int = 256
    bucket_max: int = 1024
    bucket_step: int = 64
    no_upscale: bool = False
    split_oversized: bool = False
    split_threshold: float = 0.5
    split_overlap: float = 0.2
    focal_crop: bool = False
    face_weight: float = 0.9
    entropy_weight: float = 0.15
    edges_weight: float = 0.5
    auto_size: bool = False
    auto_size_min_dim: int = 384
    auto_size_max_dim: int = 768
    auto_size_min_area: int = 64 * 64
    auto_size_max_area: int = 640 * 640
    auto_size_objective: str = "maximize_area"
    auto_size_error_threshold: float = 0.1
    flip: bool = False
    existing_caption: str = "copy"
    caption_text: str = ""
    caption_separator: str = " "
    pad_color: tuple[int, int, int] = (255, 255, 255)
    output_directory: str = ""
    if_output_exists: str = "new_subfolder"
    workers: int = 1
    on_bad_file: str = "skip"
    keep_alpha: bool = False

    def __post_init__(self) -> None:
        _multiple_of_8("width", self.width, 64, 2048)
        _multiple_of_8("height", self.height, 64, 2048)
        _choice("mode", self.mode, MODES)
        if self.mode == "buckets":
            validate_bucket_params(self.width, self.height, self.bucket_min, self.bucket_max,
                                   self.bucket_step)
        _unit("split_threshold", self.split_threshold)
        _unit("split_overlap", self.split_overlap, 0.9)
        for name in ("face_weight", "entropy_weight", "edges_weight"):
            _unit(name, getattr(self, name))
        _multiple_of_8("auto_size_min_dim", self.auto_size_min_dim, 64, 2048)
        _multiple_of_8("auto_size_max_dim", self.auto_size_max_dim, 64, 2048)
        if self.auto_size_min_dim > self.auto_size_max_dim:
            raise ValueError(f"auto_size_min_dim={self.auto_size_min_dim} is larger than "
                             f"auto_size_max_dim={self.auto_size_max_dim}; swap them")
        for name in ("auto_size_min_area", "auto_size_max_area"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 64 * 64 <= value <= 2048 * 2048:
                raise ValueError(f"{name}={value!r} must be an integer between 4096 and 4194304")
        if self.auto_size_min_area > self.auto_size_max_area:
            raise ValueError(f"auto_size_min_area={self.auto_size_min_area} is larger than "
                             f"auto_size_max_area={self.auto_size_max_area}; swap them")
        self.auto_size_objective = normalise_objective(self.auto_size_objective)
        _unit("auto_size_error_threshold", self.auto_size_error_threshold)
        self.existing_caption = caption_action(self.existing_caption)
        if not isinstance(self.caption_text, str) or not isinstance(self.caption_separator, str):
            raise ValueError("caption_text and caption_separator must be strings")
        color = tuple(self.pad_color)
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ValueError(f"pad_color={self.pad_color!r} must be three integers 0..255 (R, G, B)")
        self.pad_color = color  # type: ignore[assignment]
        if self.output_directory and not os.path.isabs(self.output_directory):
            raise ValueError(f"output_directory {self.output_directory!r} must be an absolute path "
                             "(the node resolves relative paths) or empty for a lazy dataset")
        _choice("if_output_exists", self.if_output_exists, IF_OUTPUT_EXISTS)
        if not isinstance(self.workers, int) or not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers={self.workers!r} must be 0 (auto) to {MAX_WORKERS}")
        if self.on_bad_file == "skip and report":
            self.on_bad_file = "skip"
        _choice("on_bad_file", self.on_bad_file, ON_BAD_FILE)
        if not isinstance(self.keep_alpha, bool):
            raise ValueError(f"keep_alpha={self.keep_alpha!r} must be true or false (a boolean, not a string)")

    @property
    def worker_count(self) -> int:
        """Threads to use: `workers`, or for 0 the CPU count capped at 8."""
        return self.workers or max(1, min(8, os.cpu_count() or 1))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pad_color"] = list(self.pad_color)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreprocessConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preprocess settings {unknown}; valid keys: {sorted(known)}")
        values = dict(data)
        if "pad_color" in values:
            values["pad_color"] = tuple(values["pad_color"])
        return cls(**values)
