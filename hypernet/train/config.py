"""Training settings as one validated dataclass, saved as JSON next to the checkpoints.

Field names follow ComfyUI's own training nodes where one exists (`steps`, `learning_rate`,
`batch_size`, `grad_accumulation_steps`, `seed`) and A1111's otherwise (`clip_grad_mode`,
`latent_sampling`, `template`, `shuffle_tags`, `tag_dropout`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..util.dataclass_io import strict_from_dict
from .preview import PREVIEW_SEED_MODES
from .schedule import parse_schedule
from .templates import CaptionConfig, parse_template
from .validation import held_out_count

CLIP_GRAD_MODES = ("none", "value", "norm")
LATENT_SAMPLING = ("once", "deterministic", "random")
TRAINING_DTYPES = ("fp32", "bf16", "fp16")
LOSS_TYPES = ("mse", "l1", "huber")
SCHEDULERS = ("a1111", "cosine_restarts")


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{field}: {value!r} is invalid; {allowed}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (not where files go)."""

    learning_rate: str = "1e-5"
    steps: int = 1000
    batch_size: int = 1
    grad_accumulation_steps: int = 1
    clip_grad_mode: str = "none"
    clip_grad_value: str = "0.1"
    template: str = "[filewords], [name]"
    shuffle_tags: bool = False
    tag_dropout: float = 0.0
    keep_tokens: int = 0
    latent_sampling: str = "once"
    seed: int = 0
    save_every: int = 100
    preview_every: int = 0
    # "fixed": every preview uses the node's preview seed; "random": a new seed per preview (reported).
    preview_seed_mode: str = "fixed"
    adamw_beta1: float = 0.9
    adamw_beta2: float = 0.999
    adamw_eps: float = 1e-8
    weight_decay: float = 0.01
    training_dtype: str = "fp32"
    gradient_checkpointing: bool = False
    clip_skip: int = 1
    loss_type: str = "mse"
    huber_delta: float = 0.1
    # MonkeyPatch scheduler (issue 7); "a1111" keeps the schedule string.
    scheduler: str = "a1111"
    cosine_cycle_steps: int = 64
    cosine_cycle_mult: float = 1.0
    cosine_warmup_steps: int = 5
    cosine_min_lr: float = 6e-7
    cosine_gamma: float = 1.0
    save_at_cycle_end: bool = False
    # Timestep curriculum (MonkeyPatch idea): the largest sampled timestep rises from
    # `curriculum_start` x 1000 to 1000 over each cycle (the whole run with the A1111 scheduler).
    timestep_curriculum: bool = False
    curriculum_start: float = 0.25
    # Death detection and rollback (issue 7).
    rollback: bool = True
    rollback_lr_factor: float = 0.1
    max_rollbacks: int = 3
    divergence_factor: float = 4.0
    divergence_window: int = 8
    max_weight_norm: float = 1e4
    # Held-out validation, the best checkpoint, EMA and loss options (issue 25).
    validation_images: str = "0"  # a count ("4") or a percentage ("10%") of the images; "0" = off
    validate_every: int = 0  # also validate every N steps (0: only at each save)
    stop_after_no_improvement: int = 0  # evaluations without a new lowest validation loss (0 = off)
    ema_decay: float = 0.0  # 0 = off; 0.999 is typical
    min_snr_gamma: float = 0.0  # 0 = off; 5 in the paper
    noise_offset: float = 0.0  # 0 = off; 0.05-0.1 typical
    alpha_loss_weight: bool = False  # A1111 "Use PNG alpha channel as loss weight"
    latent_disk_cache: bool = True  # reuse VAE latents of earlier runs (user/hypernetwork_latent_cache)

    def __post_init__(self) -> None:
        self._check_types()
        for name in ("steps", "batch_size", "grad_accumulation_steps", "clip_skip", "max_rollbacks",
                     "divergence_window", "cosine_cycle_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "max_rollbacks" else 1):
                raise _bad(name, value, "must be a whole number >= 1" if name != "max_rollbacks" else ">= 0")
        for name in ("save_every", "preview_every", "keep_tokens", "cosine_warmup_steps", "validate_every",
                     "stop_after_no_improvement"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(name, value, "must be a whole number >= 0 (0 = off)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise _bad("seed", self.seed, "must be a whole number in 0..2**64-1")
        self._choice("clip_grad_mode", CLIP_GRAD_MODES)
        self._choice("latent_sampling", LATENT_SAMPLING)
        self._choice("training_dtype", TRAINING_DTYPES)
        self._choice("loss_type", LOSS_TYPES)
        self._choice("scheduler", SCHEDULERS)
        self._choice("preview_seed_mode", PREVIEW_SEED_MODES)
        for name, low, high in (("adamw_beta1", 0.0, 1.0), ("adamw_beta2", 0.0, 1.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not low <= value < high:
                raise _bad(name, value, f"must be in [{low}, {high})")
        for name in ("adamw_eps", "huber_delta", "divergence_factor", "max_weight_norm", "cosine_min_lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise _bad(name, value, "must be a finite number > 0")
        if not isinstance(self.weight_decay, (int, float)) or not 0 <= self.weight_decay < 1:
            raise _bad("weight_decay", self.weight_decay, "must be in [0, 1), e.g. 0.01")
        if not 0 < self.rollback_lr_factor < 1:
            raise _bad("rollback_lr_factor", self.rollback_lr_factor, "must be in (0, 1), e.g. 0.1")
        if self.cosine_cycle_mult < 1:
            raise _bad("cosine_cycle_mult", self.cosine_cycle_mult, "must be >= 1")
        if not 0 < self.curriculum_start <= 1:
            raise _bad("curriculum_start", self.curriculum_start, "must be in (0, 1]")
        if not 0 < self.cosine_gamma <= 1:
            raise _bad("cosine_gamma", self.cosine_gamma, "must be in (0, 1]")
        self._check_judging()
        # Parse once so that a bad string fails before any model is loaded.
        parse_schedule(self.learning_rate, self.steps, "learning_rate")
        if self.clip_grad_mode != "none":
            parse_schedule(self.clip_grad_value, self.steps, "clip_grad_value")
        parse_template(self.template, "template")
        self.caption_config()

    def _check_types(self) -> None:
        """Every field has its default's type (a preset file can hold anything)."""
        for spec in fields(self):
            value, default = getattr(self, spec.name), spec.default
            if isinstance(default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(default, int):
                ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
            elif isinstance(default, float):
                ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
            else:
                ok, kind = isinstance(value, str), "text"
            if not ok:
                raise _bad(spec.name, value, f"must be {kind}")

    def _check_judging(self) -> None:
        held_out_count(self.validation_images, 2**62)  # the syntax; the dataset size is checked at the start
        if self.stop_after_no_improvement and held_out_count(self.validation_images, 2**62) == 0:
            raise _bad("stop_after_no_improvement", self.stop_after_no_improvement,
                       "needs held-out images: set validation_images (e.g. 10%) or use 0")
        if not math.isfinite(self.ema_decay) or not 0 <= self.ema_decay < 1:
            raise _bad("ema_decay", self.ema_decay, "must be in [0, 1), e.g. 0.999 (0 = off)")
        if not math.isfinite(self.min_snr_gamma) or self.min_snr_gamma < 0:
            raise _bad("min_snr_gamma", self.min_snr_gamma, "must be a number >= 0, e.g. 5 (0 = off)")
        if not math.isfinite(self.noise_offset) or not 0 <= self.noise_offset <= 1:
            raise _bad("noise_offset", self.noise_offset, "must be in [0, 1], e.g. 0.05 (0 = off)")

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise _bad(name, value, f"use one of {', '.join(allowed)}")

    def caption_config(self) -> CaptionConfig:
        return CaptionConfig(shuffle_tags=self.shuffle_tags, tag_dropout=float(self.tag_dropout),
                             keep_tokens=self.keep_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return strict_from_dict(cls, data, "training settings")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "settings") -> "TrainConfig":
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
        return cls.from_dict(settings)
