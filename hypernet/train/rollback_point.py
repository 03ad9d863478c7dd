"""Where a rollback goes back to, without a second copy of the network and its AdamW state.

An SD1.5 network with AdamW state is about 260 MB (weights + two moments); holding the last good
state in memory doubled what a run keeps, and a validated run held two such states (the newest and
the best). A rollback point is instead one of:

- the start of the run: its weights (referenced, not copied, when the caller hands over weights it
  guarantees unchanged for the run, e.g. the network that came into the node) and the optimizer
  state it started with;
- a checkpoint this run saved: its `.pt` and `.optim` on disk. Restoring reads them back; the files
  keep every tensor's dtype, so the state is bit-exact. A `.pt` whose hash differs from the one
  taken when it was written (edited, replaced or deleted since) is refused: `RollbackUnavailable`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..network.fileio import load_hypernetwork, load_optimizer_state, short_hash
from ..network.module import Hypernetwork
from .checkpoints import Checkpoint


class RollbackUnavailable(RuntimeError):
    """The rollback point's files changed or vanished since this run wrote them."""


def cpu_copy(value: object) -> object:
    """A deep copy of nested dicts/lists/tuples with every tensor copied into CPU memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v) for v in value)
    return copy.deepcopy(value)


@dataclass(frozen=True)
class RollbackPoint:
    step: int
    weights: Mapping[str, torch.Tensor] | None = None  # in memory (the start); None: read from `path`
    optimizer_state: dict | None = None
    path: Path | None = None
    file_hash: str = ""
    held_bytes: int = field(default=0, compare=False)  # memory this point holds (0 when referenced or on disk)


def unchanged_reference(network: Hypernetwork, reference: Hypernetwork | None) -> dict[str, torch.Tensor] | None:
    """`reference`'s parameters by name when they equal `network`'s exactly (names, shapes, dtypes,
    values), else None. The caller promises that `reference` is never changed during the run."""
    if reference is None or reference is network:
        return None
    mine, theirs = dict(network.named_parameters()), dict(reference.named_parameters())
    if mine.keys() != theirs.keys():
        return None
    with torch.no_grad():
        for name, param in mine.items():
            other = theirs[name]
            if other.shape != param.shape or other.dtype != param.dtype or not torch.equal(other.cpu(), param.cpu()):
                return None
    return {name: tensor.detach() for name, tensor in theirs.items()}


def start_point(network: Hypernetwork, optimizer: torch.optim.Optimizer,
                unchanged: Mapping[str, torch.Tensor] | None = None) -> RollbackPoint:
    """The state a run starts from, in CPU memory (never VRAM); the weights are copied unless
    `unchanged` (see unchanged_reference) holds them already."""
    held = 0
    if unchanged is None:
        unchanged = {name: p.detach().to("cpu", copy=True) for name, p in network.named_parameters()}
        held = sum(t.numel() * t.element_size() for t in unchanged.values())
    optimizer_state = cpu_copy(optimizer.state_dict())
    held += sum(t.numel() * t.element_size() for state in optimizer_state["state"].values()
                for t in state.values() if torch.is_tensor(t))
    return RollbackPoint(network.step, weights=unchanged, optimizer_state=optimizer_state, held_bytes=held)


def checkpoint_point(saved: Checkpoint) -> RollbackPoint:
    """A checkpoint this run has just written (RunFolder.save_checkpoint: `.pt` + `.optim`, and the
    hash taken as it was saved)."""
    return RollbackPoint(saved.step, path=saved.path, file_hash=saved.file_hash)


def restore(point: RollbackPoint, network: Hypernetwork, optimizer: torch.optim.Optimizer) -> None:
    """Put `point`'s weights and optimizer state back into `network` and `optimizer`."""
    weights, optimizer_state = point.weights, point.optimizer_state
    if point.path is not None:
        weights, optimizer_state = _read_checkpoint(point)
        names = {name for name, _ in network.named_parameters()}
        if names != weights.keys() or any(weights[n].shape != p.shape for n, p in network.named_parameters()):
            raise RollbackUnavailable(f"{point.path} no longer holds this network's layers")
    with torch.no_grad():
        for name, param in network.named_parameters():
            param.copy_(weights[name])
    # a copy: load_state_dict keeps same-device tensors as they are, and the steps after a
    # rollback would otherwise change the point a second rollback goes back to
    optimizer.load_state_dict(cpu_copy(optimizer_state) if point.path is None else optimizer_state)
    network.step = point.step


def _read_checkpoint(point: RollbackPoint) -> tuple[dict[str, torch.Tensor], dict]:
    path = point.path
    try:
        if short_hash(path) != point.file_hash:
            raise RollbackUnavailable(f"{path} changed since this run saved it")
        saved = load_hypernetwork(path)
    except (FileNotFoundError, ValueError) as exc:
        raise RollbackUnavailable(f"cannot read {path} back ({exc})") from exc
    optim = load_optimizer_state(path)
    if not optim.ok:
        raise RollbackUnavailable(f"cannot read the optimizer state of {path.name} back ({optim.reason})")
    weights = dict(saved.named_parameters())
    return weights, optim.state_dict
