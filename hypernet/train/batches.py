"""Which dataset items go into which micro-batch: a pure function of (seed, micro-batch index).

Every epoch is a seeded shuffle of the items (each repeated `repeats` times), cut into batches
that only ever mix items of one pixel size (an aspect bucket from Preprocess, or the single size
of a square dataset), so batch size > 1 works with variable-size data. Because the plan is a pure
function, a run resumed at step k draws exactly the batches an uninterrupted run would have.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Sequence

from .templates import derive_seed

Size = tuple[int, int]


@dataclass(frozen=True)
class PlannedBatch:
    epoch: int
    epoch_batch: int  # index of this batch within its epoch
    items: tuple[int, ...]  # dataset item indices, all of one size
    # Data parallel runs: the rows of `items` this process computes (None: all of them).
    rows: slice | None = None

    @property
    def share(self) -> float:
        """This process's fraction of the batch: its weight in the batch's mean loss."""
        if self.rows is None:
            return 1.0
        return len(range(*self.rows.indices(len(self.items)))) / len(self.items)


def rank_share(planned: PlannedBatch, rank: int, world: int) -> PlannedBatch:
    """`planned` with the contiguous, disjoint rows rank `rank` of `world` computes; every rank
    gets len(items) // world or one more, so the shares cover the batch exactly once."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world} processes")
    count = len(planned.items)
    return replace(planned, rows=slice(count * rank // world, count * (rank + 1) // world))


class BatchPlan:
    """Batches for item sizes `sizes` (one per dataset item) and per-item `repeats`."""

    def __init__(self, sizes: Sequence[Size], repeats: Sequence[int], batch_size: int, seed: int):
        if not sizes:
            raise ValueError("dataset: no images to train on; check LoadDataset's report")
        if len(sizes) != len(repeats):
            raise ValueError("sizes and repeats must have one entry per item")
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size} is invalid; use 1 or more")
        self.sizes = [tuple(s) for s in sizes]
        self.repeats = [max(1, int(r)) for r in repeats]
        self.batch_size = batch_size
        self.seed = seed
        self._epochs: dict[int, list[tuple[int, ...]]] = {}
        self.batches_per_epoch = len(self._epoch(0))

    def _epoch(self, epoch: int) -> list[tuple[int, ...]]:
        cached = self._epochs.get(epoch)
        if cached is not None:
            return cached
        rng = random.Random(derive_seed(self.seed, "epoch", epoch))
        groups: dict[Size, list[int]] = {}
        for index, (size, repeat) in enumerate(zip(self.sizes, self.repeats)):
            groups.setdefault(size, []).extend([index] * repeat)
        batches: list[tuple[int, ...]] = []
        for size in sorted(groups):
            members = groups[size]
            rng.shuffle(members)
            batches += [tuple(members[i:i + self.batch_size]) for i in range(0, len(members), self.batch_size)]
        rng.shuffle(batches)
        if len(self._epochs) > 4:  # keep memory flat on long runs
            self._epochs.pop(min(self._epochs))
        self._epochs[epoch] = batches
        return batches

    def batch(self, micro_index: int) -> PlannedBatch:
        """The `micro_index`-th micro-batch of the run (0-based, counted over all steps)."""
        epoch, within = divmod(micro_index, self.batches_per_epoch)
        return PlannedBatch(epoch, within, self._epoch(epoch)[within])
