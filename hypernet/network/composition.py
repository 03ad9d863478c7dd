"""A `.hns` composition bound to loaded networks, and its K/V math (the MonkeyPatch extension's).

- member at strength s: K -> K-module(K, s), V -> V-module(V, s) (a width the network lacks passes
  through unchanged);
- sequence: members applied in order, K and V each chained separately;
- parallel: every member gets the same (K, V); outputs summed with the normalised weights.
The whole composition at the Apply node's strength t gives `x + t * (composition(x) - x)`
(t = 1: exactly the extension's result).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Union

import torch

from .hns import CompositionError, MemberSpec, ParallelSpec, SequenceSpec, Spec
from .module import Hypernetwork


@dataclass(frozen=True)
class BoundMember:
    name: str  # as written in the file
    file: str  # the relative file name it resolved to
    network: Hypernetwork
    strength: float


@dataclass(frozen=True)
class BoundSequence:
    items: tuple["Bound", ...]


@dataclass(frozen=True)
class BoundParallel:
    items: tuple["Bound", ...]
    weights: tuple[float, ...]


Bound = Union[BoundMember, BoundSequence, BoundParallel]


def bind(spec: Spec, load: Callable[[str], tuple[str, Hypernetwork]]) -> Bound:
    """Replace every member name by `load(name) -> (file, network)` (errors propagate)."""
    if isinstance(spec, MemberSpec):
        file, network = load(spec.name)
        return BoundMember(spec.name, file, network, spec.strength)
    items = tuple(bind(item, load) for item in spec.items)
    if isinstance(spec, SequenceSpec):
        return BoundSequence(items)
    assert isinstance(spec, ParallelSpec)
    return BoundParallel(items, spec.weights)


def _members(node: Bound) -> Iterable[BoundMember]:
    if isinstance(node, BoundMember):
        yield node
    else:
        for item in node.items:
            yield from _members(item)


def _forward(node: Bound, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(node, BoundMember):
        k_pair = node.network.pair(k.shape[-1])
        v_pair = node.network.pair(v.shape[-1])
        if node.strength != 0.0:
            k = k if k_pair is None else k_pair[0](k, node.strength)
            v = v if v_pair is None else v_pair[1](v, node.strength)
        return k, v
    if isinstance(node, BoundSequence):
        for item in node.items:
            k, v = _forward(item, k, v)
        return k, v
    k_sum = torch.zeros(k.shape, dtype=torch.float32, device=k.device)
    v_sum = torch.zeros(v.shape, dtype=torch.float32, device=v.device)
    for item, weight in zip(node.items, node.weights):
        k_i, v_i = _forward(item, k, v)
        k_sum = k_sum + k_i.to(torch.float32) * weight
        v_sum = v_sum + v_i.to(torch.float32) * weight
    return k_sum.to(k.dtype), v_sum.to(v.dtype)


def describe(node: Bound | Spec) -> str:
    """One line, e.g. `A -> {B 80%, C 20%}`; members at strength < 1 show it as `A@0.5`."""
    if isinstance(node, (BoundMember, MemberSpec)):
        return node.name if node.strength == 1.0 else f"{node.name}@{node.strength:g}"
    if isinstance(node, (BoundSequence, SequenceSpec)):
        return " -> ".join(_grouped(item) for item in node.items)
    return "{" + ", ".join(f"{_grouped(item)} {weight * 100:.4g}%" for item, weight in zip(node.items, node.weights)) + "}"


def _grouped(node: Bound | Spec) -> str:
    text = describe(node)
    return f"({text})" if isinstance(node, (BoundSequence, SequenceSpec)) and len(node.items) > 1 else text


def to_json(node: Bound) -> dict:
    """The tree as plain data for the info route."""
    if isinstance(node, BoundMember):
        return {"kind": "member", "name": node.name, "file": node.file, "strength": node.strength}
    if isinstance(node, BoundSequence):
        return {"kind": "sequence", "items": [to_json(item) for item in node.items]}
    return {"kind": "parallel", "items": [dict(to_json(item), weight=weight)
                                          for item, weight in zip(node.items, node.weights)]}


class Composition:
    """A bound `.hns` composition, applied by `HypernetworkPatch` like one network."""

    step = None  # not a trained file: no training step

    def __init__(self, name: str, root: Bound) -> None:
        self._name = name
        self.root = root

    @property
    def name(self) -> str:
        return self._name

    @property
    def members(self) -> tuple[BoundMember, ...]:
        return tuple(_members(self.root))

    @property
    def networks(self) -> tuple[Hypernetwork, ...]:
        unique: dict[int, Hypernetwork] = {}
        for member in self.members:
            unique.setdefault(id(member.network), member.network)
        return tuple(unique.values())

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(sorted({w for n in self.networks for w in n.widths}))

    @property
    def training(self) -> bool:
        return any(n.training for n in self.networks)

    def parameters(self) -> Iterable[torch.nn.Parameter]:
        for network in self.networks:
            yield from network.parameters()

    def to(self, device: torch.device | str) -> "Composition":
        for network in self.networks:
            network.to(device)
        return self

    def __call__(self, k: torch.Tensor, v: torch.Tensor, strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, V) after the composition, blended with the inputs by `strength`."""
        out_k, out_v = _forward(self.root, k, v)
        if strength == 1.0:
            return out_k, out_v
        return k + (out_k - k) * strength, v + (out_v - v) * strength

    def describe(self) -> str:
        return describe(self.root)

    def require_fit(self, model_widths: Iterable[int], model_label: str = "the model") -> None:
        """Raise CompositionError naming the member whose network has no width of the model."""
        widths = set(model_widths)
        for member in self.members:
            if not widths & set(member.network.widths):
                raise CompositionError(
                    f"{self.name}: member {member.name!r} ({member.file}) has modules for attention widths "
                    f"{list(member.network.widths)} but {model_label} uses {sorted(widths)}; none match. "
                    f"Use networks made for this model family in {self.name}")

    def __repr__(self) -> str:
        return f"Composition({self.name!r}: {self.describe()})"
