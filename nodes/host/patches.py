"""Models and attention patches: a MODEL's attention widths, and where a hypernetwork patch goes.

The host's calling convention for an attention patch (ComfyUI's `attn1_patch`/`attn2_patch`): it
calls `patch(q, k, v, extra_options)` before the K/V projections of every self- (attn1) and
cross-attention (attn2) and uses the returned `(q, k, v)`; it moves the patches with the model
(`patch.to(device)`) and deep-copies model options when a ModelPatcher is cloned.
`hypernet.network.patch.HypernetworkPatch` has that shape; `set_attention_patch` is the one place
that registers it.
"""
from __future__ import annotations

from typing import Any


def attention_widths(model: Any) -> dict[str, tuple[int, ...]]:
    """The input widths of a MODEL's attention K projections: self (attn1) and cross (attn2)."""
    found: dict[str, set[int]] = {"self": set(), "cross": set()}
    diffusion_model = model.model.diffusion_model
    for name, module in diffusion_model.named_modules():
        to_k = getattr(module, "to_k", None)
        if to_k is None or not hasattr(to_k, "in_features"):
            continue
        if name.endswith("attn1"):
            found["self"].add(int(to_k.in_features))
        elif name.endswith("attn2"):
            found["cross"].add(int(to_k.in_features))
    return {kind: tuple(sorted(widths)) for kind, widths in found.items()}


def all_attention_widths(model: Any) -> tuple[int, ...]:
    widths = attention_widths(model)
    return tuple(sorted(set(widths["self"]) | set(widths["cross"])))


def with_attention_patch(model: Any, patch: Any) -> Any:
    """A clone of MODEL with `patch` before every self- and cross-attention K/V projection."""
    patched = model.clone()
    set_attention_patch(patched, patch)
    return patched


def set_attention_patch(patcher: Any, patch: Any) -> None:
    """Put `patch` before every self- and cross-attention K/V projection of `patcher` (in place)."""
    patcher.set_model_attn1_patch(patch)
    patcher.set_model_attn2_patch(patch)
