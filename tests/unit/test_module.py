"""Module structure (A1111 numbering), activations, init, seeding and the Hypernetwork object."""
from __future__ import annotations

import itertools
import logging
import warnings
import math

import pytest
import torch

from hypernet.network.activations import (
    ACTIVATIONS,
    STOCK_COMFY_ACTIVATIONS,
    activation_names,
    creatable_activation_names,
    is_stock_comfy_activation,
    make_activation,
)
from hypernet.network.config import HypernetworkConfig
from hypernet.network.module import Hypernetwork, HypernetworkModule, expected_state_shapes, init_weights

STOCK_NINE = ["linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign", "mish"]
ACTS = STOCK_NINE + ["gelu", "silu", "prelu", "hardswish", "softplus"]
DIM = 8


def _expected_layout(layers, act, ln, dropout, activate_output):
    """A1111's layer order written out independently: list of (kind, extra) per Sequential index."""
    out = []
    n_lin = len(layers) - 1
    for i in range(n_lin):
        out.append(("linear", (int(DIM * layers[i + 1]), int(DIM * layers[i]))))
        last = i == n_lin - 1
        if act != "linear" and (not last or activate_output):
            out.append(("act", act))
        if ln:
            out.append(("ln", int(DIM * layers[i + 1])))
        if dropout[i + 1] > 0:
            out.append(("dropout", dropout[i + 1]))
    return out


@pytest.mark.parametrize(
    "act, ln, dropout, activate_output",
    list(itertools.product(ACTS, [False, True], [None, (0, 0.1, 0.25, 0)], [False, True])),
)
def test_key_layout_and_structure(act, ln, dropout, activate_output):
    layers = [1, 2, 1.5, 1]
    cfg = HypernetworkConfig(
        name="n", layer_structure=layers, activation_func=act, is_layer_norm=ln,
        use_dropout=dropout is not None, dropout_structure=dropout, activate_output=activate_output,
        sizes=[DIM],
    )
    module = HypernetworkModule(DIM, cfg)
    layout = _expected_layout(layers, act, ln, dropout or (0, 0, 0, 0), activate_output)
    assert len(module.linear) == len(layout)

    expected_keys = {}
    for idx, (kind, extra) in enumerate(layout):
        layer = module.linear[idx]
        if kind == "linear":
            assert type(layer) is torch.nn.Linear
            expected_keys[f"linear.{idx}.weight"] = extra
            expected_keys[f"linear.{idx}.bias"] = (extra[0],)
        elif kind == "act":
            assert type(layer) is ACTIVATIONS[act]
            if act == "prelu":
                expected_keys[f"linear.{idx}.weight"] = (1,)
        elif kind == "ln":
            assert type(layer) is torch.nn.LayerNorm
            expected_keys[f"linear.{idx}.weight"] = (extra,)
            expected_keys[f"linear.{idx}.bias"] = (extra,)
        else:
            assert type(layer) is torch.nn.Dropout and layer.p == pytest.approx(extra)
    state = module.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_keys
    assert expected_state_shapes(DIM, cfg) == expected_keys


def test_spec_examples_numbering():
    plain = HypernetworkModule(DIM, HypernetworkConfig(name="n", sizes=[DIM]))
    assert list(plain.state_dict()) == ["linear.0.weight", "linear.0.bias", "linear.1.weight", "linear.1.bias"]
    cfg = HypernetworkConfig(name="n", activation_func="relu", is_layer_norm=True, use_dropout=True,
                             dropout_structure=[0, 0.3, 0], sizes=[DIM])
    keys = sorted({k.rsplit(".", 1)[0] for k in HypernetworkModule(DIM, cfg).state_dict()})
    assert keys == ["linear.0", "linear.2", "linear.4", "linear.5"]


def test_fractional_multipliers_truncate():
    cfg = HypernetworkConfig(name="n", layer_structure=[1, 1.5, 1], sizes=[5])
    module = HypernetworkModule(5, cfg)
    assert module.linear[0].out_features == 7  # int(5 * 1.5)


# ---- activations ------------------------------------------------------------------------------
def test_activation_table():
    assert list(STOCK_COMFY_ACTIVATIONS) == STOCK_NINE
    assert activation_names()[:9] == STOCK_NINE
    assert ACTIVATIONS["swish"] is torch.nn.Hardswish
    assert ACTIVATIONS["silu"] is torch.nn.SiLU
    for absent in ("threshold", "multiheadattention", "glu"):
        assert absent not in ACTIVATIONS
    for name in activation_names():
        layer = make_activation(name)
        assert (layer is None) == (name == "linear")
        if layer is not None:
            with warnings.catch_warnings():  # softmax family: implicit-dim deprecation warning
                warnings.simplefilter("ignore", UserWarning)
                assert layer(torch.randn(2, 3, 4)).shape == (2, 3, 4)  # width preserved
    creatable = creatable_activation_names()
    assert creatable[:9] == STOCK_NINE
    assert not {"hardswish", "softmax", "softmax2d"} & set(creatable)


def test_stock_readability():
    for name in STOCK_NINE:
        assert is_stock_comfy_activation(name)
    for name in ("gelu", "silu", "hardswish", "prelu", None):
        assert not is_stock_comfy_activation(name)


def test_creating_non_stock_activation_warns(caplog):
    with caplog.at_level(logging.WARNING):
        Hypernetwork.create(HypernetworkConfig(name="g", activation_func="relu", sizes=[DIM]))
    assert "only work with this pack" not in caplog.text
    with caplog.at_level(logging.WARNING):
        Hypernetwork.create(HypernetworkConfig(name="g", activation_func="gelu", sizes=[DIM]))
    assert "only work with this pack and A1111" in caplog.text


# ---- init ---------------------------------------------------------------------------------------
def _cfg(init, act="relu", ln=True, dim=64):
    return HypernetworkConfig(name="n", activation_func=act, is_layer_norm=ln,
                              weight_initialization=init, sizes=[dim])


def test_normal_init_statistics():
    hn = Hypernetwork.create(_cfg("Normal"))
    k, v = hn.pair(64)
    for module in (k, v):
        for layer in module.linear:
            if isinstance(layer, (torch.nn.Linear, torch.nn.LayerNorm)):
                assert torch.count_nonzero(layer.bias) == 0
                assert abs(layer.weight.mean().item()) < 0.003
                tol = 0.1 if isinstance(layer, torch.nn.Linear) else 0.35
                assert layer.weight.std().item() == pytest.approx(0.01, rel=tol)
    assert not torch.equal(k.linear[0].weight, v.linear[0].weight)  # K and V drawn separately


@pytest.mark.parametrize("init", ["XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal"])
@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_other_inits_match_torch_formulas(init, act):
    """Same generator seed -> identical to torch.nn.init's own functions (LayerNorm: Normal 0.01)."""
    cfg = _cfg(init, act=act, dim=16)
    ours = HypernetworkModule(16, cfg)
    init_weights(ours, init, act, torch.Generator().manual_seed(7))

    ref = HypernetworkModule(16, cfg)
    gen = torch.Generator().manual_seed(7)
    nonlin = "leaky_relu" if act == "leakyrelu" else "relu"
    fn = {
        "XavierUniform": lambda w: torch.nn.init.xavier_uniform_(w, generator=gen),
        "XavierNormal": lambda w: torch.nn.init.xavier_normal_(w, generator=gen),
        "KaimingUniform": lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity=nonlin, generator=gen),
        "KaimingNormal": lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity=nonlin, generator=gen),
    }[init]
    with torch.no_grad():
        for layer in ref.linear:
            if isinstance(layer, torch.nn.Linear):
                fn(layer.weight)
                layer.bias.zero_()
            elif isinstance(layer, torch.nn.LayerNorm):
                torch.nn.init.normal_(layer.weight, 0.0, 0.01, generator=gen)
                layer.bias.zero_()
    for (name, a), (_, b) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-7), name


def test_kaiming_std():
    hn = Hypernetwork.create(_cfg("KaimingNormal", ln=False, dim=128))
    w = hn.pair(128)[0].linear[0].weight  # fan_in 128
    assert w.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)


def test_seeding_is_reproducible_and_local():
    cfg = HypernetworkConfig(name="n", sizes=[8, 16], seed=123)
    before = torch.get_rng_state()
    a = Hypernetwork.create(cfg)
    assert torch.equal(torch.get_rng_state(), before)  # global RNG untouched
    b = Hypernetwork.create(cfg)
    for (_, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(x, y)
    c = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[8, 16], seed=124))
    assert not torch.equal(a.pair(8)[0].linear[0].weight, c.pair(8)[0].linear[0].weight)
    # enabling another width does not change the weights of the others
    d = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[16, 32, 8], seed=123))
    assert torch.equal(a.pair(8)[1].linear[1].weight, d.pair(8)[1].linear[1].weight)


# ---- forward ----------------------------------------------------------------------------------
def test_forward_is_residual_with_strength():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", activation_func="tanh",
                                                weight_initialization="XavierNormal", sizes=[DIM]))
    k = hn.pair(DIM)[0]
    x = torch.randn(2, 3, DIM)
    inner = k.linear(x)
    assert torch.allclose(k(x, 0.5), x + 0.5 * inner, atol=1e-6)
    assert torch.equal(k(x, 0.0), x)
    assert torch.allclose(k(x), x + inner, atol=1e-6)


def test_fresh_normal_net_is_near_identity():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[64]))
    x = torch.randn(4, 64)
    assert (hn.pair(64)[0](x) - x).abs().max() < 0.05


def test_dropout_only_in_train_mode():
    cfg = HypernetworkConfig(name="n", activation_func="relu", weight_initialization="XavierNormal",
                             use_dropout=True, dropout_structure=[0, 0.5, 0], sizes=[32])
    hn = Hypernetwork.create(cfg)
    assert not hn.training
    k = hn.pair(32)[0]
    x = torch.randn(16, 32)
    assert torch.equal(k(x), k(x))
    hn.train()
    assert hn.training and k.training
    torch.manual_seed(0)
    assert not torch.equal(k(x), k(x))
    hn.eval()
    assert not k.training


def test_half_input_computes_in_float32():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", activation_func="relu",
                                                weight_initialization="XavierNormal", sizes=[DIM]))
    k = hn.pair(DIM)[0]
    x = torch.randn(3, DIM).to(torch.float16)
    y = k(x)
    assert y.dtype == torch.float16
    assert all(p.dtype == torch.float32 for p in hn.parameters())
    ref = (x.float() + k.linear(x.float())).half()
    assert torch.equal(y, ref)


# ---- Hypernetwork object ------------------------------------------------------------------------
def test_hypernetwork_object_interface():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[16, 8]))
    assert hn.widths == (16, 8)
    assert hn.pair(32) is None
    assert set(hn.layers) == {8, 16}
    # 2 widths x 2 modules x 2 linears x (weight + bias)
    assert len(list(hn.parameters())) == 16
    assert next(iter(dict(hn.named_parameters()))).startswith("16.0.linear.0.")
    assert hn.to("cpu") is hn and hn.device == torch.device("cpu")
    with pytest.raises(ValueError, match="float32"):
        hn.to(torch.float16)
    assert hn.train() is hn and hn.training
    assert hn.eval() is hn and not hn.training
    hn.rename("other")
    assert hn.name == "other" and hn.config.name == "other"


def test_a1111_dict_form():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[8], activate_output=False))
    hn.step = 5
    d = hn.to_a1111_dict()
    assert isinstance(d[8], tuple) and len(d[8]) == 2
    assert d["activation_func"] == "linear" and d["activate_output"] is False
    assert d["step"] == 5
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in d[8][0].values())
    assert all(not t.requires_grad for t in d[8][0].values())


@pytest.mark.parametrize("key", ["768", " 320", "1_024", "name"])
def test_extra_metadata_keys_that_would_confuse_loaders_are_refused(key):
    cfg = HypernetworkConfig(name="n", sizes=[8])
    pair = [HypernetworkModule(8, cfg), HypernetworkModule(8, cfg)]
    with pytest.raises(ValueError, match="extra metadata key"):
        Hypernetwork(cfg, {8: pair}, extra={key: "x"})


def test_extra_metadata_values_must_be_plain():
    cfg = HypernetworkConfig(name="n", sizes=[8])
    pair = [HypernetworkModule(8, cfg), HypernetworkModule(8, cfg)]
    Hypernetwork(cfg, {8: pair}, extra={"base_model": "sd15", "info": {"a": [1, 2.5, None]}})
    with pytest.raises(ValueError, match="base_model"):
        Hypernetwork(cfg, {8: pair}, extra={"base_model": torch.zeros(1)})


def test_prelu_default_weight_survives_empty_construction():
    hn = Hypernetwork.create(HypernetworkConfig(name="n", activation_func="prelu", sizes=[DIM]))
    prelu = hn.pair(DIM)[0].linear[1]
    assert isinstance(prelu, torch.nn.PReLU) and torch.equal(prelu.weight, torch.full((1,), 0.25))


def test_networks_made_under_inference_mode_are_trainable(tmp_path):
    """ComfyUI runs nodes under torch.inference_mode(); the parameters must still be normal tensors."""
    from hypernet.network.fileio import load_pt, save_pt

    with torch.inference_mode():
        made = Hypernetwork.create(HypernetworkConfig(name="n", sizes=[DIM]))
        save_pt(made, tmp_path / "n.pt")
        loaded = load_pt(tmp_path / "n.pt").to("cpu")
    for hn in (made, loaded):
        assert not any(p.is_inference() for p in hn.parameters())
        hn.train()
        opt = torch.optim.SGD(hn.parameters(), lr=0.1)
        x = torch.randn(2, DIM)
        hn.pair(DIM)[0](x).square().sum().backward()
        opt.step()
