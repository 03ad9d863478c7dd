"""Data parallel training over torch.distributed (torchrun launches the processes).

The UNet is frozen and the hypernetwork is small, so plain data parallelism is the whole story:
every rank computes its rows of each batch (`batches.rank_share`), and one all-reduce per step
sums the ranks' gradients, each already weighted by its share of the batch, so that every rank
steps with the gradient of the whole batch's mean loss (with equal shares: the ranks' average).
Clipping, the optimizer and the checks after them then run identically on every rank.

Collectives have a timeout (the process group's), and every failure of one becomes a
`LostRankError` that names the step, so a lost rank stops the others with a clear message.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from ..network.module import Hypernetwork


@dataclass
class HeadlessRole:
    """How one process of a headless run differs from a node run: where it writes (rank 0: the
    hypernetworks folder; other ranks: a private temp folder, never the run's), whether it writes
    previews, how it learns it must stop, and its gradient sync (None with one process)."""

    folder: Path
    writer: bool
    should_stop: Callable[[], bool]
    sync: "TorchGradientSync | None" = None


class LostRankError(RuntimeError):
    """A collective failed or timed out: another rank died, was killed or hangs."""


@dataclass(frozen=True)
class WorldInfo:
    """What torchrun tells each process (RANK, WORLD_SIZE, LOCAL_RANK); a plain run is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def writer(self) -> bool:
        """Only rank 0 writes checkpoints, `.optim`, the CSV and previews."""
        return self.rank == 0


def world_from_env(env: dict | None = None) -> WorldInfo:
    """The launcher's RANK / WORLD_SIZE / LOCAL_RANK (a plain `python` run: rank 0 of 1)."""
    env = os.environ if env is None else env
    try:
        rank, world = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
        local = int(env.get("LOCAL_RANK", 0))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be whole numbers ({exc}); launch with torchrun") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK {rank} / WORLD_SIZE {world} / LOCAL_RANK {local} are inconsistent; "
                         "launch with torchrun")
    return WorldInfo(rank, world, local)


def init_process_group(info: WorldInfo, backend: str, timeout_s: float) -> None:
    """Join torchrun's rendezvous (MASTER_ADDR/MASTER_PORT from the environment)."""
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world,
                            timeout=datetime.timedelta(seconds=timeout_s))


class TorchGradientSync:
    """The trainer's `GradientSync` over the default process group."""

    def __init__(self, info: WorldInfo, device: torch.device | str = "cpu"):
        self.rank, self.world = info.rank, info.world
        self.device = torch.device(device)
        self.step_label = "start"

    def _all_reduce(self, tensor: torch.Tensor, op=dist.ReduceOp.SUM, what: str = "gradients") -> None:
        try:
            dist.all_reduce(tensor, op=op)
        except Exception as exc:  # gloo/NCCL raise RuntimeError subclasses, or their own on timeouts
            raise LostRankError(f"rank {self.rank}: the {what} all-reduce at step {self.step_label} failed: another "
                                f"rank stopped, was killed or did not answer in time ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc

    def reduce(self, params: list[torch.nn.Parameter], loss: float) -> float:
        """Sum gradients (each rank's already weighted by its share) and losses over ranks, in one
        all-reduce. A parameter no rank has a gradient for keeps `grad is None`, as in one process."""
        device = params[0].device if params else self.device
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float()
                          for p in params]
                         + [torch.tensor([loss], dtype=torch.float32, device=device),
                            torch.tensor([float(p.grad is not None) for p in params], device=device)])
        self._all_reduce(flat)
        offset = 0
        for index, param in enumerate(params):
            count = param.numel()
            has_grad = bool(flat[-len(params) + index] > 0)
            if has_grad:
                summed = flat[offset:offset + count].view_as(param).to(param.dtype)
                if param.grad is None:
                    param.grad = summed.clone()
                else:
                    param.grad.copy_(summed)
            offset += count
        return float(flat[offset])

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says True (a Ctrl-C on one rank stops all at one step)."""
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self._all_reduce(value, op=dist.ReduceOp.MAX, what="stop check")
        return bool(value.item() > 0)

    def same_start(self, network: Hypernetwork, optimizer_state: dict | None, message: str
                   ) -> tuple[dict | None, str]:
        """Every rank starts from rank 0's resume point: its weights and step are copied into
        `network`; returns rank 0's optimizer state and start message."""
        payload = [None]
        if self.rank == 0:
            state = {k: v.detach().cpu() for k, v in network.named_parameters()}
            payload = [(state, network.step, optimizer_state, message)]
        try:
            dist.broadcast_object_list(payload, src=0)
        except Exception as exc:
            raise LostRankError(f"rank {self.rank}: could not receive the starting state from rank 0 "
                                f"({type(exc).__name__}: {exc})") from exc
        if self.rank != 0:
            state, step, optimizer_state, message = payload[0]
            with torch.no_grad():
                for name, param in network.named_parameters():
                    param.copy_(state[name])
            network.step = step
        return optimizer_state, message
