"""Training settings as one validated dataclass, saved as JSON next to the checkpoints.

The fields, their defaults and ranges are generated from `settings.SETTINGS` (store "config");
this module adds what needs more than one field: the schedules parsed once (`lr_schedule`,
`clip_schedule`, `cosine`), the template, and the JSON reading. Field names follow ComfyUI's own
training nodes where one exists (`steps`, `learning_rate`, `batch_size`, ...) and A1111's otherwise.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Mapping

from ..util.dataclass_io import strict_from_dict
from .schedule import CosineRestarts, StepSchedule, parse_schedule
from .settings import (CLIP_GRAD_MODES, LATENT_SAMPLING, LOSS_TYPES, SCHEDULERS,  # noqa: F401 (re-exported)
                       SETTINGS, TRAINING_DTYPES, check_value, make_settings_class)
from .templates import CaptionConfig, parse_template
from .validation import held_out_count


class _TrainConfigBase:
    """Methods of `TrainConfig`; its fields come from the declaration."""

    # Parsed once in __post_init__ (not dataclass fields: never saved, never compared).
    lr_schedule: StepSchedule
    clip_schedule: StepSchedule | None
    cosine: CosineRestarts | None
    template_lines: list[str]

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen
        set_(self, "lr_schedule", parse_schedule(self.learning_rate, self.steps, "learning_rate"))
        set_(self, "clip_schedule", parse_schedule(self.clip_grad_value, self.steps, "clip_grad_value")
             if self.clip_grad_mode != "none" else None)
        cosine = None
        if self.scheduler == "cosine_restarts":
            base = self.lr_schedule.rate_at(0)
            cosine = CosineRestarts(base_lr=base, cycle_steps=self.cosine_cycle_steps, cycle_mult=self.cosine_cycle_mult,
                                    warmup_steps=self.cosine_warmup_steps, min_lr=min(self.cosine_min_lr, base),
                                    gamma=self.cosine_gamma)
        set_(self, "cosine", cosine)
        set_(self, "template_lines", parse_template(self.template, "template"))
        self.caption_config()
        self._check_judging()

    def _check_judging(self) -> None:
        """What the declaration's ranges cannot say about validation (issue 25)."""
        held_out = held_out_count(self.validation_images, 2**62)  # the syntax; the dataset size is checked at the start
        if self.stop_after_no_improvement and held_out == 0:
            raise ValueError(f"stop_after_no_improvement: {self.stop_after_no_improvement} is invalid; it needs "
                             "held-out images: set validation_images (e.g. 10%) or use 0")

    def caption_config(self) -> CaptionConfig:
        return CaptionConfig(shuffle_tags=self.shuffle_tags, tag_dropout=float(self.tag_dropout),
                             keep_tokens=self.keep_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return strict_from_dict(cls, data, "training settings")

    @classmethod
    def from_json(cls, text: str, source: str = "settings") -> "TrainConfig":
        return cls.from_dict(read_settings_json(text, source))


def read_settings_json(text: str, source: str = "settings") -> dict[str, Any]:
    """The settings object of a training_settings.json (its "config") or of a bare JSON object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc}); use a settings file this pack wrote") from None
    except RecursionError:
        raise ValueError(f"{source}: the JSON is nested too deeply; use a settings file this pack wrote") from None
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object of training settings")
    settings = data.get("config", data)
    if not isinstance(settings, dict):
        raise ValueError(f"{source}: 'config' must be a JSON object of training settings")
    return settings


def preset_from_json(text: str, source: str = "settings_json") -> dict[str, Any]:
    """The settings a preset names (by file key), each checked for type and range; keys it leaves
    out are not returned, so a partial preset changes only what it names."""
    values = read_settings_json(text, source)
    by_key = {s.field: s for s in SETTINGS if s.store == "config"}
    unknown = sorted(str(key) for key in values if key not in by_key)
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(by_key)}")
    return {key: check_value(by_key[key], value, f"{source}: {key}") for key, value in values.items()}


TrainConfig = make_settings_class(
    "TrainConfig", "config",
    "Everything that decides what a training run computes (not where files go); see settings.SETTINGS.",
    __name__, _TrainConfigBase)
