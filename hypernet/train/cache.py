"""Per-item caches of a training run: VAE latents (encoded once) and text conditioning.

Latent sampling (A1111's `latent_sampling_method`):
- `once`: one posterior sample per item, drawn when the cache is built (seeded), reused;
- `deterministic`: the posterior mean;
- `random`: a new sample from the cached (mean, std) at every use.
VAEs without a Gaussian posterior (e.g. TAESD) give one latent per item and all three modes use it
(A1111 falls back the same way).

Prompts: without tag shuffle/dropout each item's prompt is fixed, so it is encoded once; with them
every use builds a new prompt and encodes it (through a small cache of recent texts).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import torch

from .templates import CaptionConfig, build_prompt, derive_seed

LatentPair = tuple[torch.Tensor, "torch.Tensor | None"]
Encoded = tuple[torch.Tensor, "torch.Tensor | None"]  # (cond (1, tokens, width), pooled or None)


class LatentCache:
    """Unscaled VAE latents per dataset item, on the CPU."""

    def __init__(self, entries: Sequence[LatentPair], mode: str, seed: int):
        if mode not in ("once", "deterministic", "random"):
            raise ValueError(f"latent_sampling: {mode!r} is invalid; use once, deterministic or random")
        self.mode = mode
        self.means: list[torch.Tensor] = []
        self.stds: list[torch.Tensor | None] = []
        for index, (mean, std) in enumerate(entries):
            if std is not None and mode == "once":
                gen = torch.Generator().manual_seed(derive_seed(seed, "once", index) % 2**63)
                mean = mean + std * torch.randn(mean.shape, generator=gen)
                std = None
            self.means.append(mean)
            self.stds.append(std if mode == "random" else None)

    def __len__(self) -> int:
        return len(self.means)

    def batch(self, indices: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        """Latents (B, C, h, w) for `indices` (all of one size)."""
        out = []
        for index in indices:
            mean, std = self.means[index], self.stds[index]
            if std is not None:
                mean = mean + std * torch.randn(mean.shape, generator=generator)
            out.append(mean)
        return torch.cat(out, dim=0)

    @property
    def nbytes(self) -> int:
        tensors = self.means + [s for s in self.stds if s is not None]
        return sum(t.numel() * t.element_size() for t in tensors)


def stack_conditioning(encoded: Sequence[Encoded]) -> Encoded:
    """Batch per-item conditioning; shorter token sequences are padded by repeating their last
    vector (A1111 does the same for prompts longer than one 77-token chunk)."""
    longest = max(c.shape[1] for c, _ in encoded)
    conds = []
    for cond, _ in encoded:
        if cond.shape[1] < longest:
            pad = cond[:, -1:, :].expand(-1, longest - cond.shape[1], -1)
            cond = torch.cat([cond, pad], dim=1)
        conds.append(cond)
    pooled = [p for _, p in encoded]
    pooled_batch = torch.cat(pooled, dim=0) if all(p is not None for p in pooled) else None
    return torch.cat(conds, dim=0), pooled_batch


class PromptCache:
    """Training prompts per item and their encodings."""

    def __init__(self, template_lines: Sequence[str], name: str, captions: Sequence[str], config: CaptionConfig,
                 seed: int, encode: Callable[[str], Encoded], recent: int = 64):
        self.lines = list(template_lines)
        self.name = name
        self.captions = list(captions)
        self.config = config
        self.seed = seed
        self.encode = encode
        self._recent: "OrderedDict[str, Encoded]" = OrderedDict()
        self._recent_size = recent
        self._fixed: dict[int, Encoded] = {}

    def prompt(self, index: int, step: int, epoch: int) -> str:
        return build_prompt(self.lines, self.name, self.captions[index], self.config, seed=self.seed,
                            item_index=index, step=step, epoch=epoch)

    def _encode_cached(self, text: str) -> Encoded:
        if text in self._recent:
            self._recent.move_to_end(text)
            return self._recent[text]
        encoded = self.encode(text)
        self._recent[text] = encoded
        while len(self._recent) > self._recent_size:
            self._recent.popitem(last=False)
        return encoded

    def precompute(self) -> None:
        """Encode every fixed prompt now (so the text encoder can leave the device afterwards)."""
        if self.config.augments:
            return
        for index in range(len(self.captions)):
            self._fixed[index] = self.encode(self.prompt(index, 0, 0))

    def conditioning(self, indices: Sequence[int], step: int, epoch: int) -> Encoded:
        encoded = []
        for index in indices:
            if not self.config.augments:
                if index not in self._fixed:
                    self._fixed[index] = self.encode(self.prompt(index, 0, 0))
                encoded.append(self._fixed[index])
            else:
                encoded.append(self._encode_cached(self.prompt(index, step, epoch)))
        return stack_conditioning(encoded)
