"""Held-out validation: which images are held out, the fixed inputs they are evaluated with, and
which checkpoint is the best so far.

The number must be comparable between checkpoints and between runs on the same data, so nothing
in it is random at evaluation time: the held-out images are picked from the seed, each is noised
at the same timesteps spread over the schedule with the same noise (derived from the seed and the
image's index), the latent is the cached one (the posterior mean, or the seeded `once` sample),
and the network runs without gradients or dropout. Min-SNR weighting and offset noise, which
change the training objective, are left out, so the number also compares runs that differ in them.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .templates import derive_seed

TIMESTEPS = 4  # forward passes per held-out image and evaluation
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def held_out_count(spec: str, items: int, field_name: str = "validation_images") -> int:
    """How many of `items` images `spec` holds out: "0" (off), a count ("4") or a percentage ("10%")."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"{field_name}: {spec!r} is invalid; use a count such as 4, a percentage such as 10%, "
                         "or 0 for off")
    number, percent = float(match.group(1)), bool(match.group(2))
    if percent:
        if number > 100:
            raise ValueError(f"{field_name}: {spec!r} is over 100%")
        count = math.ceil(items * number / 100) if number > 0 else 0
    else:
        if number != int(number):
            raise ValueError(f"{field_name}: {spec!r} is not a whole number of images; use e.g. 4 or 10%")
        count = int(number)
    if count and count >= items:
        raise ValueError(f"{field_name}: {spec} holds out {count} of the dataset's {items} image(s), leaving none "
                         "to train on; hold out fewer")
    return count


def split_items(items: int, spec: str, seed: int) -> tuple[list[int], list[int]]:
    """(training item indices, held-out item indices), both sorted; the held-out ones are a seeded
    pick, so the same seed and dataset always hold out the same images."""
    count = held_out_count(spec, items)
    held = sorted(random.Random(derive_seed(seed, "validation-split")).sample(range(items), count)) if count else []
    held_set = set(held)
    return [i for i in range(items) if i not in held_set], held


def validation_timesteps(count: int = TIMESTEPS, schedule_steps: int = 1000) -> torch.Tensor:
    """`count` timesteps at the centres of equal slices of the schedule (e.g. 125, 375, 625, 875)."""
    return torch.tensor([int((k + 0.5) * schedule_steps / count) for k in range(count)], dtype=torch.long)


def validation_noise(shape: tuple[int, ...], seed: int, item: int) -> torch.Tensor:
    """Fixed noise (one sample per timestep: shape (T, C, h, w)) for held-out item `item`."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "validation-noise", item) % 2**63)
    return torch.randn(shape, generator=generator)


# (item index, timesteps, noise) -> (prediction, target[, weight]) for those T noised copies
Evaluate = Callable[[int, torch.Tensor, torch.Tensor], tuple]


@dataclass
class ValidationSet:
    """The held-out items and what evaluating them means; `loss(evaluate)` is the validation loss."""

    items: Sequence[int]
    latent_shape: Callable[[int], tuple[int, ...]]  # item -> (C, h, w)
    seed: int
    loss_of: Callable[..., torch.Tensor]  # (prediction, target, weight or None) -> scalar mean loss
    timesteps: torch.Tensor = field(default_factory=validation_timesteps)

    def loss(self, evaluate: Evaluate) -> float:
        """Mean loss over held-out items (each the mean over its fixed timesteps), no gradients."""
        total = 0.0
        with torch.no_grad():
            for item in self.items:
                noise = validation_noise((len(self.timesteps), *self.latent_shape(item)), self.seed, item)
                out = evaluate(item, self.timesteps, noise)
                weight = out[2] if len(out) > 2 else None
                total += float(self.loss_of(out[0], out[1], weight))
        return total / len(self.items)


@dataclass
class BestTracker:
    """The lowest validation loss so far and, among saved checkpoints, the best one; counts
    evaluations without improvement for the optional early stop (`patience` 0 = never)."""

    patience: int = 0
    best_loss: float = math.inf
    best_step: int | None = None
    since_best: int = 0
    checkpoint_loss: float = math.inf
    checkpoint_step: int | None = None

    def evaluated(self, step: int, loss: float) -> None:
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss, self.best_step, self.since_best = loss, step, 0
        else:
            self.since_best += 1

    def saved(self, step: int, loss: float) -> bool:
        """A checkpoint of `step` with validation loss `loss` was written; True when it is the best one."""
        if math.isfinite(loss) and loss < self.checkpoint_loss:
            self.checkpoint_loss, self.checkpoint_step = loss, step
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.since_best >= self.patience
