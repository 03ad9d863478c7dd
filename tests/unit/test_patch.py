"""The attention patch: width selection, K/V separation, strength, stacking, copy/to semantics."""
from __future__ import annotations

import copy

import pytest
import torch

from hypernet.network.config import HypernetworkConfig
from hypernet.network.module import Hypernetwork
from hypernet.network.patch import HypernetworkPatch, match_widths, require_match


def _net(sizes=(8, 16), seed=0, name="n") -> Hypernetwork:
    # Xavier init so the networks change their input noticeably (Normal is ~identity)
    return Hypernetwork.create(HypernetworkConfig(
        name=name, sizes=list(sizes), activation_func="tanh", weight_initialization="XavierNormal", seed=seed))


def _qkv(width=8, ctx_width=None):
    torch.manual_seed(1)
    q = torch.randn(2, 5, width)
    c = torch.randn(2, 7, ctx_width or width)
    return q, c, c


def test_applies_k_and_v_modules_and_leaves_q():
    hn = _net()
    q, k, v = _qkv()
    q2, k2, v2 = HypernetworkPatch([(hn, 0.7)])(q, k, v, {})
    assert q2 is q
    k_mod, v_mod = hn.pair(8)
    assert torch.allclose(k2, k + 0.7 * k_mod.linear(k), atol=1e-6)
    assert torch.allclose(v2, v + 0.7 * v_mod.linear(v), atol=1e-6)
    assert not torch.allclose(k2, v2)  # K and V have separate modules


def test_selects_pair_by_context_width():
    hn = _net(sizes=(8, 16))
    q, k, v = _qkv(width=8, ctx_width=16)  # cross-attention: query width 8, context width 16
    _, k2, _ = HypernetworkPatch([(hn, 1.0)])(q, k, v, {})
    assert torch.allclose(k2, hn.pair(16)[0](k), atol=1e-6)
    q, k, v = _qkv(width=8, ctx_width=32)  # no module for 32: untouched
    _, k3, v3 = HypernetworkPatch([(hn, 1.0)])(q, k, v, {})
    assert k3 is k and v3 is v


def test_k_and_v_chosen_by_their_own_width():
    hn = _net(sizes=(8, 16))
    k = torch.randn(1, 3, 8)
    v = torch.randn(1, 3, 16)
    _, k2, v2 = HypernetworkPatch([(hn, 1.0)])(torch.zeros(1), k, v, None)
    assert torch.allclose(k2, hn.pair(8)[0](k), atol=1e-6)
    assert torch.allclose(v2, hn.pair(16)[1](v), atol=1e-6)


def test_strength_zero_is_identity():
    hn = _net()
    q, k, v = _qkv()
    _, k2, v2 = HypernetworkPatch([(hn, 0.0)])(q, k, v, {})
    assert torch.equal(k2, k) and torch.equal(v2, v)


def test_negative_strength_subtracts():
    hn = _net()
    q, k, v = _qkv()
    _, k2, _ = HypernetworkPatch([(hn, -1.0)])(q, k, v, {})
    assert torch.allclose(k2, k - hn.pair(8)[0].linear(k), atol=1e-6)


def test_stacking_equals_sequential_application():
    a, b = _net(seed=1, name="a"), _net(seed=2, name="b")
    q, k, v = _qkv()
    _, k_ab, v_ab = HypernetworkPatch([(a, 0.5), (b, 2.0)])(q, k, v, {})
    ka = a.pair(8)[0](k, 0.5)
    va = a.pair(8)[1](v, 0.5)
    assert torch.allclose(k_ab, b.pair(8)[0](ka, 2.0), atol=1e-6)
    assert torch.allclose(v_ab, b.pair(8)[1](va, 2.0), atol=1e-6)
    # same as two separate patches in host order
    _, k1, v1 = HypernetworkPatch([(a, 0.5)])(q, k, v, {})
    _, k2, v2 = HypernetworkPatch([(b, 2.0)])(q, k1, v1, {})
    assert torch.allclose(k_ab, k2, atol=1e-6) and torch.allclose(v_ab, v2, atol=1e-6)
    # order matters (the networks are not linear)
    _, k_ba, _ = HypernetworkPatch([(b, 2.0), (a, 0.5)])(q, k, v, {})
    assert not torch.allclose(k_ab, k_ba, atol=1e-4)


def test_deepcopy_returns_same_object():
    patch = HypernetworkPatch([(_net(), 1.0)])
    assert copy.deepcopy(patch) is patch
    assert copy.copy(patch) is patch
    options = {"transformer_options": {"patches": {"attn1_patch": [patch], "attn2_patch": [patch]}}}
    cloned = copy.deepcopy(options)  # what the 2024 host does on model.clone()
    assert cloned["transformer_options"]["patches"]["attn1_patch"][0] is patch
    assert cloned["transformer_options"]["patches"]["attn2_patch"][0] is patch


def test_to_returns_self_and_keeps_fp32():
    hn = _net()
    patch = HypernetworkPatch([(hn, 1.0)])
    assert patch.to(torch.float16) is patch
    assert patch.to("cpu") is patch
    assert patch.to(torch.device("cpu"), torch.bfloat16) is patch
    assert patch.to(device="cpu", dtype=torch.float16) is patch
    assert all(p.dtype == torch.float32 for p in hn.parameters())
    with pytest.raises(ValueError, match="HypernetworkPatch.to"):
        patch.to(object())


def test_half_input_returns_half_and_matches_fp32():
    hn = _net()
    patch = HypernetworkPatch([(hn, 1.0)]).to(torch.float16)
    q, k, v = _qkv()
    _, k16, v16 = patch(q.half(), k.half(), v.half(), {})
    assert k16.dtype == torch.float16 and v16.dtype == torch.float16
    assert all(p.dtype == torch.float32 for p in hn.parameters())
    _, k32, _ = patch(q, k.half().float(), v, {})
    assert torch.allclose(k16.float(), k32, atol=2e-3)


def test_gradients_reach_the_used_width_only():
    hn = _net(sizes=(8, 16)).train()
    q, k, v = _qkv()
    _, k2, v2 = HypernetworkPatch([(hn, 1.0)])(q, k, v, {})
    (k2.sum() + v2.square().sum()).backward()
    grads = dict(hn.named_parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in grads.items() if n.startswith("8."))
    assert all(p.grad is None for n, p in grads.items() if n.startswith("16."))


def test_bad_strength_and_entries():
    hn = _net()
    for bad in (float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="strength"):
            HypernetworkPatch([(hn, bad)])
    with pytest.raises(ValueError, match="Hypernetwork"):
        HypernetworkPatch([(object(), 1.0)])


def test_widths_and_matching():
    a, b = _net(sizes=(768, 320)), _net(sizes=(640,))
    assert HypernetworkPatch([(a, 1), (b, 1)]).widths == {768, 320, 640}
    sd15 = [320, 640, 1280, 768]
    m = match_widths(a, sd15)
    assert m.any and m.matched == (768, 320) and m.unused == () and m.uncovered == (640, 1280)
    sdxl = [640, 1280, 2048]
    m = match_widths([768, 1024], sdxl)
    assert not m.any and m.unused == (768, 1024)
    assert require_match(a, sd15).matched == (768, 320)
    with pytest.raises(ValueError, match=r"SDXL uses \[640, 1280, 2048\]; none match"):
        require_match(_net(sizes=(768, 320)), [640, 1280, 2048], "SDXL")


def _count_forwards(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_same_context_tensor_is_computed_once_and_reused():
    from hypernet.network.config import HypernetworkConfig
    from hypernet.network.module import Hypernetwork
    from hypernet.network.patch import HypernetworkPatch

    network = Hypernetwork.create(HypernetworkConfig(name="memo", sizes=[16]))
    k_module = network.pair(16)[0]
    calls = _count_forwards(k_module.linear)
    patch = HypernetworkPatch([(network, 1.0)])
    context = torch.randn(1, 5, 16)
    hidden = torch.randn(1, 7, 16)
    first = patch(hidden, context, context, {})
    second = patch(hidden, context, context, {})
    assert len(calls) == 1 and second[1] is first[1]
    patch(hidden, context.clone(), context, {})
    assert len(calls) == 2, "a different tensor must be recomputed"
    with torch.no_grad():
        next(k_module.parameters()).add_(1.0)
    again = patch(hidden, context, context, {})
    assert len(calls) == 3, "changed weights must invalidate the memo"
    assert not torch.equal(again[1], first[1])


def test_dropout_in_training_is_never_memoised():
    from hypernet.network.config import HypernetworkConfig
    from hypernet.network.module import Hypernetwork
    from hypernet.network.patch import HypernetworkPatch

    config = HypernetworkConfig(name="drop", sizes=[16], use_dropout=True, dropout_structure=[0, 0.5, 0])
    network = Hypernetwork.create(config).train()
    calls = _count_forwards(network.pair(16)[0].linear)
    patch = HypernetworkPatch([(network, 1.0)])
    context = torch.randn(1, 5, 16)
    patch(torch.randn(1, 7, 16), context, context, {})
    patch(torch.randn(1, 7, 16), context, context, {})
    assert len(calls) == 2


def test_memo_works_on_inference_tensors():
    """ComfyUI samples under inference mode, where tensors have no version counter."""
    from hypernet.network.config import HypernetworkConfig
    from hypernet.network.module import Hypernetwork
    from hypernet.network.patch import HypernetworkPatch

    network = Hypernetwork.create(HypernetworkConfig(name="inference", sizes=[16]))
    patch = HypernetworkPatch([(network, 1.0)])
    with torch.inference_mode():
        context = torch.randn(1, 5, 16)
        hidden = torch.randn(1, 7, 16)
        first = patch(hidden, context, context, {})
        second = patch(hidden, context, context, {})
    assert second[1] is first[1]


def test_memo_survives_interleaved_self_attention_calls():
    """In a UNet every block calls attn1 (self, other widths) between two attn2 calls (context)."""
    from hypernet.network.config import HypernetworkConfig
    from hypernet.network.module import Hypernetwork
    from hypernet.network.patch import HypernetworkPatch

    network = Hypernetwork.create(HypernetworkConfig(name="unet_like", sizes=[16, 8]))
    calls = _count_forwards(network.pair(16)[0].linear)
    self_calls = _count_forwards(network.pair(8)[0].linear)
    patch = HypernetworkPatch([(network, 1.0)])
    context = torch.randn(1, 5, 16)
    for _ in range(4):
        hidden = torch.randn(1, 9, 8)
        patch(hidden, hidden, hidden, {})  # attn1: self-attention, width 8
        patch(torch.randn(1, 9, 8), context, context, {})  # attn2: the shared text context
    assert len(calls) == 1, "the context's K module must run once for all cross-attention layers"
    assert len(self_calls) == 4, "self-attention inputs differ per layer and are always computed"
    assert not any(key[2] == 8 for key in patch._memo), "self-attention results are not retained"
