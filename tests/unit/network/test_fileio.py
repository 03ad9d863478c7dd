"""File formats: A1111 .pt round trip and compatibility, .safetensors, bad files, .optim sidecar."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import (
    load_hypernetwork,
    load_optimizer_state,
    load_pt,
    load_safetensors,
    optim_path,
    save_hypernetwork,
    save_optimizer_state,
    save_pt,
    save_safetensors,
    short_hash,
)
from hypernet.network.module import Hypernetwork

A1111_META = {
    "name", "layer_structure", "activation_func", "is_layer_norm", "weight_initialization",
    "use_dropout", "dropout_structure", "activate_output", "last_layer_dropout", "optional_info",
    "step", "sd_checkpoint", "sd_checkpoint_name",
}

CONFIGS = [
    dict(),
    dict(layer_structure=[1, 2, 2, 1], activation_func="relu", is_layer_norm=True, use_dropout=True,
         dropout_structure=[0, 0.05, 0.15, 0], activate_output=True),
    dict(layer_structure=[1, 1.5, 1], activation_func="prelu", weight_initialization="KaimingUniform",
         optional_info="hello"),
    dict(activation_func="swish", is_layer_norm=True, weight_initialization="XavierNormal"),
]


def _net(sizes=(8, 16), **kw) -> Hypernetwork:
    kw.setdefault("weight_initialization", "XavierNormal")
    return Hypernetwork.create(HypernetworkConfig(name="net", sizes=list(sizes), **kw))


def _assert_same(a: Hypernetwork, b: Hypernetwork) -> None:
    assert a.config.to_dict() == b.config.to_dict()
    assert (a.step, a.sd_checkpoint, a.sd_checkpoint_name, a.extra) == (
        b.step, b.sd_checkpoint, b.sd_checkpoint_name, b.extra)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for key in pa:
        assert torch.equal(pa[key], pb[key]), key


# ---- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_round_trip(tmp_path, kw, suffix):
    hn = _net(**kw)
    hn.step = 1234
    hn.sd_checkpoint, hn.sd_checkpoint_name = "0123456789", "v1-5-pruned"
    hn.extra = {"base_model": "sd15", "notes": {"k": [1, 2.5, None, True]}}
    path = save_hypernetwork(hn, tmp_path / f"net{suffix}")
    loaded = load_hypernetwork(path)
    _assert_same(hn, loaded)
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == [f"net{suffix}"]  # no temp files left behind


def test_pt_file_is_plain_a1111_dict_readable_by_stock_loaders(tmp_path):
    hn = _net(sizes=(320, 8), is_layer_norm=True, activation_func="mish")
    hn.extra = {"base_model": "sd15"}
    path = save_pt(hn, tmp_path / "n.pt")
    data = torch.load(path, map_location="cpu", weights_only=True)
    widths = [k for k in data if type(k) is int]
    assert widths == [320, 8]
    assert set(data) - set(widths) == A1111_META | {"base_model"}
    for key in set(data) - set(widths):
        with pytest.raises(ValueError):  # stock ComfyUI int()s every key and skips failures
            int(key)
    for width in widths:
        entry = data[width]
        assert len(entry) == 2
        for state in entry:
            assert all(isinstance(k, str) and type(v) is torch.Tensor for k, v in state.items())
            weights = [k[: -len(".weight")] for k in state if k.endswith(".weight")]
            assert all(f"{w}.bias" in state for w in weights)
            # stock loader: with is_layer_norm every other '*.weight' is a LayerNorm after a Linear
            for lin, ln in zip(weights[::2], weights[1::2]):
                assert state[f"{lin}.weight"].ndim == 2 and state[f"{ln}.weight"].ndim == 1
                assert state[f"{ln}.weight"].shape[0] == state[f"{lin}.weight"].shape[0]
            assert state[f"{weights[0]}.weight"].shape[1] == width
    assert data["activation_func"] == "mish" and data["activate_output"] is False
    assert type(data["layer_structure"]) is list and type(data["step"]) is int
    # exactly what a weights_only reader sees; also plain pickle types only inside the zip
    with open(path, "rb") as fh:
        assert fh.read(2) == b"PK"


def test_activation_none_is_written_as_linear(tmp_path):
    path = save_pt(_net(activation_func=None), tmp_path / "n.pt")
    assert torch.load(path, weights_only=True)["activation_func"] == "linear"


def test_use_dropout_written_stock_safe(tmp_path):
    hn = _net(layer_structure=[1, 2, 2, 1], use_dropout=True, dropout_structure=[0, 0.1, 0, 0])
    path = save_pt(hn, tmp_path / "safe.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["use_dropout"] is False and raw["dropout_structure"] == [0, 0.1, 0, 0]
    assert raw["last_layer_dropout"] is False
    assert load_pt(path).config.use_dropout is True  # A1111 rule: non-zero structure forces it
    raw2 = torch.load(save_pt(hn, tmp_path / "raw.pt", stock_safe_dropout=False), weights_only=True)
    assert raw2["use_dropout"] is True


def test_safetensors_layout(tmp_path):
    from safetensors import safe_open

    hn = _net(sizes=(16, 8))
    path = save_safetensors(hn, tmp_path / "n.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        meta = json.loads(fh.metadata()["hypernetwork"])
    assert "16.0.linear.0.weight" in keys and "8.1.linear.1.bias" in keys
    assert len(keys) == 2 * 2 * 4
    assert meta["layer_structure"] == [1.0, 2.0, 1.0] and meta["sizes"] == [16, 8]
    assert load_safetensors(path).widths == (16, 8)


def test_loading_does_not_touch_global_rng(tmp_path):
    path = save_pt(_net(), tmp_path / "n.pt")
    before = torch.get_rng_state()
    load_pt(path)
    assert torch.equal(before, torch.get_rng_state())


# ---- files made elsewhere ---------------------------------------------------------------------
def _a1111_module(dim, layers):
    seq = torch.nn.Sequential(*layers)
    holder = torch.nn.Module()
    holder.linear = seq
    return holder.state_dict()  # an OrderedDict with _metadata, as A1111 saves it


def test_loads_a1111_style_file_with_defaults_and_extra_keys(tmp_path):
    dim = 8
    # activate_output absent -> A1111 treats it as True: activation after the output layer too
    k = _a1111_module(dim, [torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.LayerNorm(16),
                            torch.nn.Dropout(0.3), torch.nn.Linear(16, 8), torch.nn.ReLU(),
                            torch.nn.LayerNorm(8)])
    v = _a1111_module(dim, [torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.LayerNorm(16),
                            torch.nn.Dropout(0.3), torch.nn.Linear(16, 8), torch.nn.ReLU(),
                            torch.nn.LayerNorm(8)])
    assert isinstance(k, OrderedDict)
    data = {dim: (k, v), "layer_structure": [1, 2, 1], "activation_func": "relu", "is_layer_norm": True,
            "use_dropout": True, "dropout_structure": [0, 0.3, 0], "step": 7,
            "skip_connection": False, "upsample_linear": None, "some_tool": "x"}
    path = tmp_path / "style.pt"
    torch.save(data, path)
    hn = load_pt(path)
    assert hn.config.activate_output is True
    assert hn.name == "style"  # absent name -> file stem
    assert hn.step == 7 and hn.sd_checkpoint is None
    assert hn.extra == {"skip_connection": False, "upsample_linear": None, "some_tool": "x"}
    assert torch.equal(hn.pair(dim)[0].linear[4].weight, k["linear.4.weight"])
    # re-saved file keeps the extras and now carries activate_output explicitly
    raw = torch.load(save_pt(hn, tmp_path / "again.pt"), weights_only=True)
    assert raw["activate_output"] is True and raw["some_tool"] == "x"


def test_missing_dropout_structure_is_derived(tmp_path):
    dim = 4
    mod = lambda: _a1111_module(dim, [torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 8),  # noqa: E731
                                      torch.nn.Dropout(0.3), torch.nn.Linear(8, 4)])
    torch.save({dim: (mod(), mod()), "layer_structure": [1, 2, 2, 1], "activation_func": "linear",
                "use_dropout": True, "last_layer_dropout": True, "activate_output": False}, tmp_path / "d.pt")
    hn = load_pt(tmp_path / "d.pt")
    assert list(hn.config.dropout_structure) == pytest.approx([0, 0.3, 0.3, 0])
    drops = [m.p for m in hn.pair(dim)[0].linear if isinstance(m, torch.nn.Dropout)]
    assert drops == pytest.approx([0.3, 0.3])


def test_legacy_linear1_linear2_file(tmp_path):
    dim = 8
    torch.manual_seed(0)
    w1, b1, w2, b2 = torch.randn(16, 8), torch.randn(16), torch.randn(8, 16), torch.randn(8)
    sd = {"linear1.weight": w1, "linear1.bias": b1, "linear2.weight": w2, "linear2.bias": b2}
    torch.save({dim: [sd, dict(sd)]}, tmp_path / "old.pt")
    hn = load_pt(tmp_path / "old.pt")
    assert hn.config.layer_structure == (1.0, 2.0, 1.0) and hn.config.activation_func == "linear"
    x = torch.randn(3, dim)
    expected = x + ((x @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(hn.pair(dim)[0](x), expected, atol=1e-5)


# ---- bad files ---------------------------------------------------------------------------------
class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _OpensFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("payload_cls", [_RunsShell, _OpensFile])
def test_pickled_code_is_refused_without_running(tmp_path, payload_cls):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    good = _net(sizes=(8,)).to_a1111_dict()
    good["name"] = payload_cls(marker)
    torch.save(good, path)
    with pytest.raises(ValueError) as err:
        load_pt(path)
    assert str(path) in str(err.value) and "refused" in str(err.value)
    assert not marker.exists()


def test_payload_is_live(tmp_path):
    """The payload above really runs under an unsafe loader (so the refusal test means something)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_OpensFile(marker))).close()
    assert marker.exists()


def _saved(tmp_path, mutate, name="bad.pt", **kw):
    data = _net(sizes=(8,), **kw).to_a1111_dict()
    mutate(data)
    path = tmp_path / name
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: d[8][0].__setitem__("linear.0.weight", torch.zeros(16, 9)), "shape"),
        (lambda d: d[8][1].pop("linear.1.bias"), "linear.1.bias"),
        (lambda d: d[8][0].__setitem__("linear.7.weight", torch.zeros(3)), "linear.7.weight"),
        (lambda d: d.__setitem__("activation_func", "wobble"), "wobble"),
        (lambda d: d.__setitem__("is_layer_norm", True), "missing"),
        (lambda d: d.__setitem__("layer_structure", [1, 3, 1]), "shape"),
        (lambda d: d.__setitem__("layer_structure", [1, 2, 2]), "layer_structure"),
        (lambda d: d.__setitem__("layer_structure", "1,2,1"), "layer_structure"),
        (lambda d: d.__setitem__(8, (d[8][0],)), "pair"),
        (lambda d: d.__setitem__("step", -3), "step"),
        (lambda d: d[8][0].__setitem__("linear.0.bias", torch.full((16,), float("nan"))), "NaN"),
        (lambda d: d[8][0].__setitem__("linear.0.bias", torch.zeros(16, dtype=torch.int64)), "dtype"),
        (lambda d: d.__setitem__("skip_connection", True), "MonkeyPatch"),
        (lambda d: [d.pop(k) for k in list(d) if type(k) is int], "no attention-width"),
        (lambda d: d.__setitem__("dropout_structure", [0, 0.5]), "dropout_structure"),
    ],
)
def test_bad_file_catalogue(tmp_path, mutate, expect):
    path = _saved(tmp_path, mutate)
    with pytest.raises(ValueError) as err:
        load_pt(path)
    assert str(path) in str(err.value)
    assert expect in str(err.value)


def test_monkeypatch_resblock_keys_rejected(tmp_path):
    sd = {"linear.0.linear.0.weight": torch.zeros(16, 8), "linear.0.linear.0.bias": torch.zeros(16),
          "linear.1.linear.0.weight": torch.zeros(8, 16), "linear.1.linear.0.bias": torch.zeros(8)}
    torch.save({8: (sd, sd), "layer_structure": [1, 2, 1]}, tmp_path / "res.pt")
    with pytest.raises(ValueError, match="MonkeyPatch.*skip connection"):
        load_pt(tmp_path / "res.pt")


def test_not_a_dict(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(ValueError, match="not a hypernetwork file"):
        load_pt(tmp_path / "t.pt")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_and_empty_files(tmp_path, suffix):
    path = save_hypernetwork(_net(sizes=(64,)), tmp_path / f"n{suffix}")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError) as err:
        load_hypernetwork(path)
    assert str(path) in str(err.value) and "re-download or re-save" in str(err.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=str(path.name)):
        load_hypernetwork(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_pt(tmp_path / "nope.pt")


def test_safetensors_from_another_tool_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"lora_unet_down.alpha": torch.zeros(1)}, str(tmp_path / "lora.safetensors"))
    with pytest.raises(ValueError, match="not a hypernetwork safetensors"):
        load_safetensors(tmp_path / "lora.safetensors")


# ---- .optim sidecar ----------------------------------------------------------------------------
def _optimizer_state(hn):
    opt = torch.optim.AdamW(hn.parameters(), lr=1e-3)
    for p in hn.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    return opt.state_dict()


def test_optim_round_trip(tmp_path):
    hn = _net(sizes=(8,))
    pt = save_pt(hn, tmp_path / "n.pt")
    state = _optimizer_state(hn)
    side = save_optimizer_state(pt, "AdamW", state)
    assert side == optim_path(pt) and side.name == "n.pt.optim"
    raw = torch.load(side, weights_only=True)
    assert raw["hash"] == hashlib.sha256(pt.read_bytes()).hexdigest()[:10] == short_hash(pt)
    assert raw["optimizer_name"] == "AdamW"
    result = load_optimizer_state(pt)
    assert result.ok and result.reason == "" and result.optimizer_name == "AdamW"
    assert torch.equal(result.state_dict["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    # a fresh optimizer accepts it
    torch.optim.AdamW(hn.parameters(), lr=1e-3).load_state_dict(result.state_dict)


def test_optim_hash_mismatch_is_reported(tmp_path):
    hn = _net(sizes=(8,))
    pt = save_pt(hn, tmp_path / "n.pt")
    save_optimizer_state(pt, "AdamW", _optimizer_state(hn))
    hn.step = 1
    save_pt(hn, pt)  # the .pt changed, the sidecar is stale
    result = load_optimizer_state(pt)
    assert not result.ok and result.state_dict is None
    assert "different version" in result.reason and short_hash(pt) in result.reason


def test_optim_missing_and_corrupt(tmp_path):
    pt = save_pt(_net(sizes=(8,)), tmp_path / "n.pt")
    missing = load_optimizer_state(pt)
    assert not missing.ok and "does not exist" in missing.reason
    optim_path(pt).write_bytes(b"garbage")
    corrupt = load_optimizer_state(pt)
    assert not corrupt.ok and "unreadable" in corrupt.reason
    with pytest.raises(FileNotFoundError):
        load_optimizer_state(tmp_path / "gone.pt")


def test_rename_keeps_optim_valid(tmp_path):
    hn = _net(sizes=(8,))
    pt = save_pt(hn, tmp_path / "a.pt")
    save_optimizer_state(pt, "SGD", _optimizer_state(hn))
    new = Path(tmp_path / "b.pt")
    pt.rename(new)
    optim_path(pt).rename(optim_path(new))
    assert load_optimizer_state(new).optimizer_name == "SGD"
