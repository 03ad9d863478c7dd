"""Attention patch applying hypernetworks to K and V inputs, A1111 style (q untouched).

`patch(q, k, v, extra_options)` returns `(q, k, v)` with K and V through the networks; where the
host calls it, and how it is registered, is in `nodes/host/patches.py`. The network pair is chosen
by the last dimension of the context (K) and of the value (V); several networks apply in order,
each getting the previous one's outputs (A1111 chaining), each with its own strength.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from .composition import Composition
from .module import Hypernetwork


def _check_strength(strength: Any) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise ValueError(f"strength: {strength!r} is invalid; must be a finite number (e.g. 1.0)")
    return float(strength)


class HypernetworkPatch:
    """Callable `(q, k, v, extra_options) -> (q, k, v)` over an ordered list of (network, strength).

    The networks are shared, not copied: `copy.deepcopy` returns the patch itself (the 2024 host
    deep-copies model options on clone), so training a network trains what the model runs.
    `.to(device)` moves the networks; dtype arguments are ignored (weights stay float32, inputs are
    cast inside the modules).
    """

    def __init__(self, entries: Iterable[tuple[Hypernetwork, float]] = ()) -> None:
        checked = []
        for entry in entries:
            network, strength = entry
            if not isinstance(network, (Hypernetwork, Composition)):
                raise ValueError(f"HypernetworkPatch: expected a Hypernetwork or Composition, "
                                 f"got {type(network).__name__}")
            checked.append((network, _check_strength(strength)))
        self.entries: tuple[tuple[Hypernetwork, float], ...] = tuple(checked)
        self._memo: dict[tuple[int, int], tuple[torch.Tensor, tuple, torch.Tensor]] = {}

    @property
    def networks(self) -> tuple[Hypernetwork, ...]:
        """Every network applied (the members of a composition included)."""
        out: list[Hypernetwork] = []
        for network, _ in self.entries:
            out.extend(network.networks if isinstance(network, Composition) else (network,))
        return tuple(out)

    @property
    def widths(self) -> frozenset[int]:
        """Every attention width any of the networks has a module pair for."""
        return frozenset(w for n in self.networks for w in n.widths)

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for index, (network, strength) in enumerate(self.entries):
            if strength == 0.0:
                continue
            if isinstance(network, Composition):
                k, v = self._run_composition(index, network, q, k, v, strength)
                continue
            k_pair = network.pair(k.shape[-1])
            v_pair = network.pair(v.shape[-1])
            if k_pair is None and v_pair is None:
                continue
            if network.device != k.device:  # host did not call .to(); follow the activations
                network.to(k.device)
            # Cross-attention (k is the text context, not q) repeats the same input in every layer;
            # self-attention inputs differ per layer, so they are never memoised (nor retained).
            reuse = k is not q
            if k_pair is not None:
                k = self._run(index, 0, k_pair[0], k, strength) if reuse else k_pair[0](k, strength)
            if v_pair is not None:
                v = self._run(index, 1, v_pair[1], v, strength) if reuse else v_pair[1](v, strength)
        return q, k, v

    def _run(self, entry: int, slot: int, module: torch.nn.Module, x: torch.Tensor, strength: float) -> torch.Tensor:
        """`module(x, strength)`, reusing the result when the very same input tensor comes again.

        Every cross-attention layer of a UNet receives the same text-context tensor, so the K and V
        modules of the context width would otherwise recompute one result per layer (16 times in
        SD1). The memo keeps a strong reference to its input (so its identity cannot be reused by
        another tensor) and is keyed on the input's and the weights' version counters, so an
        in-place change or an optimizer step invalidates it.
        """
        if module.training and any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in module.modules()):
            return module(x, strength)  # each layer draws its own dropout mask, as in A1111
        key = (entry, slot, x.shape[-1])
        weights_version = sum(p._version for p in module.parameters())
        # Inference tensors (ComfyUI samples in inference mode) have no version counter; the host
        # never edits the context in place, and identity is still checked.
        x_version = -1 if x.is_inference() else x._version
        state = (x_version, weights_version, module.training, torch.is_grad_enabled())
        cached = self._memo.get(key)
        if cached is not None and cached[0] is x and cached[1] == state:
            return cached[2]
        out = module(x, strength)
        self._memo[key] = (x, state, out)
        return out

    def _run_composition(self, entry: int, composition: Composition, q: torch.Tensor, k: torch.Tensor,
                         v: torch.Tensor, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
        """`composition(k, v, strength)`, reused for the same cross-attention inputs (as `_run`)."""
        if composition.networks and composition.networks[0].device != k.device:
            composition.to(k.device)
        if k is q or composition.training or torch.is_grad_enabled():
            return composition(k, v, strength)
        key = (entry, 2, k.shape[-1], v.shape[-1])
        weights_version = sum(p._version for p in composition.parameters())
        cached = self._memo.get(key)
        if cached is not None and cached[0] is k and cached[1][0] is v and cached[1][1] == weights_version:
            return cached[2]
        out = composition(k, v, strength)
        self._memo[key] = (k, (v, weights_version), out)
        return out

    def to(self, *args: Any, **kwargs: Any) -> "HypernetworkPatch":
        """Accepts `.to(device)`, `.to(dtype)`, `.to(device, dtype)`, keywords too; returns self."""
        device = kwargs.get("device")
        for arg in args:
            if isinstance(arg, torch.dtype):
                continue
            if isinstance(arg, (str, int, torch.device)):
                device = arg
            else:
                raise ValueError(f"HypernetworkPatch.to: cannot move to {arg!r}; pass a device or dtype")
        if device is not None:
            for network in self.networks:
                network.to(device)
        return self

    def __deepcopy__(self, memo: dict) -> "HypernetworkPatch":
        return self

    def __copy__(self) -> "HypernetworkPatch":
        return self

    def __repr__(self) -> str:
        inner = ", ".join(f"{n.name}:{s:g}" for n, s in self.entries)  # a composition by its file name
        return f"HypernetworkPatch([{inner}])"


@dataclass(frozen=True)
class WidthMatch:
    """Which attention widths of a model a network covers."""

    matched: tuple[int, ...]  # in both the network and the model
    unused: tuple[int, ...]  # network widths the model does not have
    uncovered: tuple[int, ...]  # model widths the network has no module for

    @property
    def any(self) -> bool:
        return bool(self.matched)


def match_widths(network: Hypernetwork | Iterable[int], model_widths: Iterable[int]) -> WidthMatch:
    """Compare a network's widths (or a list of widths) with a model's attention widths."""
    net = tuple(network.widths if isinstance(network, Hypernetwork) else network)
    model = tuple(dict.fromkeys(model_widths))
    model_set, net_set = set(model), set(net)
    return WidthMatch(
        matched=tuple(w for w in net if w in model_set),
        unused=tuple(w for w in net if w not in model_set),
        uncovered=tuple(w for w in model if w not in net_set),
    )


def require_match(network: Hypernetwork, model_widths: Iterable[int], model_label: str = "the model") -> WidthMatch:
    """`match_widths`, raising ValueError with a fix when the network matches no width at all."""
    model_widths = tuple(model_widths)
    result = match_widths(network, model_widths)
    if not result.any:
        raise ValueError(
            f"hypernetwork {network.name!r} has modules for attention widths {list(network.widths)} "
            f"but {model_label} uses {sorted(model_widths)}; none match, so it would do nothing. "
            f"Use a hypernetwork made for this model family (SD1.x text width 768, SD2.x 1024, "
            f"SDXL 2048) or create one with matching sizes"
        )
    return result
