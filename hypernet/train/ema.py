"""An exponential moving average of the hypernetwork's weights (as OneTrainer, SimpleTuner and
ai-toolkit offer for LoRAs).

The decay warms up as min(decay, (1 + t) / (10 + t)) with t the optimizer step, so early EMA
weights are not dominated by the random initialisation; t is the network's step, so a resumed run
continues the same average. The shadow copy lives beside the network (same device, float32) and is
saved next to every checkpoint as `<name>-<step>-ema.pt`, an ordinary A1111 file.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch

from ..network.module import Hypernetwork

EMA_WEIGHTS_KEY = "hn_weights"  # extra file metadata: "ema" or "raw"


def warmed_decay(decay: float, step: int) -> float:
    """The decay used for the update that produces step `step` (1-based)."""
    return min(decay, (1 + step) / (10 + step))


class EmaWeights:
    """The moving average of `network`'s parameters, updated after every optimizer step."""

    def __init__(self, network: Hypernetwork, decay: float, start: Hypernetwork | None = None):
        if not math.isfinite(decay) or not 0 < decay < 1:
            raise ValueError(f"ema_decay: {decay!r} is invalid; use a number in (0, 1) such as 0.999, or 0 for off")
        from .trainer import copy_network  # trainer imports this module

        self.decay = decay
        self.shadow = copy_network(start if start is not None else network)
        self.shadow.to(network.device)
        self.shadow.extra = dict(self.shadow.extra, **{EMA_WEIGHTS_KEY: "ema"})
        self.restored = start is not None

    def _follow_device(self, network: Hypernetwork) -> None:
        if self.shadow.device != network.device:  # the host may move the network after the start
            self.shadow.to(network.device)

    @torch.no_grad()
    def update(self, network: Hypernetwork) -> None:
        self._follow_device(network)
        rate = 1.0 - warmed_decay(self.decay, network.step)
        for shadow, param in zip(self.shadow.parameters(), network.parameters()):
            shadow.lerp_(param.detach(), rate)
        self.shadow.step = network.step

    @torch.no_grad()
    def reset_to(self, network: Hypernetwork) -> None:
        """Start the average again from `network` (after a rollback)."""
        for shadow, param in zip(self.shadow.parameters(), network.parameters()):
            shadow.copy_(param.detach())
        self.shadow.step = network.step

    @contextlib.contextmanager
    def swapped_into(self, network: Hypernetwork) -> Iterator[None]:
        """Inside the block `network`'s parameters hold the EMA weights (a swap, no copy), so a
        host patch that references `network` evaluates the average."""
        self._follow_device(network)
        pairs = list(zip(network.parameters(), self.shadow.parameters()))
        for param, shadow in pairs:
            param.data, shadow.data = shadow.data, param.data
        try:
            yield
        finally:
            for param, shadow in pairs:
                param.data, shadow.data = shadow.data, param.data
