"""A1111 files the pack used to refuse: a `dropout_structure` longer than `layer_structure` (A1111's
create tab never checked it). They load as A1111 builds them, say what was ignored, save back in
A1111's format, and every file Create writes reads back."""
from __future__ import annotations

import itertools

import pytest
import torch

from hypernet.network.config import HypernetworkConfig, parse_float_list
from hypernet.network.fileio import load_hypernetwork, load_pt, save_hypernetwork, save_pt
from hypernet.network.module import Hypernetwork


def a1111_module(dim: int, layer_structure, dropout_structure, activation=torch.nn.ReLU) -> torch.nn.Sequential:
    """A module laid out as A1111 builds one: Linear, activation (not after the last), Dropout
    for entry i+1 when > 0; loud weights so any difference shows."""
    layers = []
    n = len(layer_structure)
    for i in range(n - 1):
        layers.append(torch.nn.Linear(int(dim * layer_structure[i]), int(dim * layer_structure[i + 1])))
        if i < n - 2:
            layers.append(activation())
        if dropout_structure[i + 1] > 0:
            layers.append(torch.nn.Dropout(dropout_structure[i + 1]))
    seq = torch.nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(dim + n)
    with torch.no_grad():
        for p in seq.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return seq.eval()


def write_a1111(path, layer_structure, dropout_structure, dim=8):
    k, v = (a1111_module(dim, layer_structure, dropout_structure) for _ in range(2))
    state = lambda m: {f"linear.{key}": t for key, t in m.state_dict().items()}  # noqa: E731
    torch.save({dim: (state(k), state(v)), "layer_structure": list(layer_structure), "activation_func": "relu",
                "use_dropout": True, "dropout_structure": list(dropout_structure), "activate_output": False,
                "name": path.stem, "step": 3, "sd_checkpoint": "abc", "sd_checkpoint_name": "base.ckpt"}, path)
    return k, v


@pytest.mark.parametrize("layers, dropout, ignored", [
    ([1, 2, 1], [0, 0.1, 0, 0], "[0.0]"),
    ([1, 1], [0, 0, 0], "[0.0]"),
    ([1, 1], [0, 0.3, 0], "[0.0]"),  # what A1111's API writes for `1, 1` with dropout on
    ([1, 2, 2, 1], [0, 0.05, 0.1, 0, 0.2, 0.3], "[0.2, 0.3]"),
])
def test_longer_dropout_structure_loads_as_a1111_builds_it(tmp_path, layers, dropout, ignored):
    path = tmp_path / "odd.pt"
    k, v = write_a1111(path, layers, dropout)
    hn = load_pt(path)
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    k_mod, v_mod = hn.pair(8)
    assert torch.allclose(k_mod(x), x + k(x), atol=1e-6)
    assert torch.allclose(v_mod(x), x + v(x), atol=1e-6)
    assert len(hn.config.dropout_structure) == len(layers)
    assert any(f"{ignored} ignored" in note for note in hn.load_notes), hn.load_notes
    # training uses the dropout A1111 uses (the first len(layer_structure) entries)
    used = [m.p for m in hn.pair(8)[0].linear if isinstance(m, torch.nn.Dropout)]
    assert used == pytest.approx([p for p in dropout[1:len(layers) - 1] if p > 0])
    # saved back in A1111's format (equal lengths) and read again without notes
    again = load_pt(save_pt(hn, tmp_path / "again.pt"))
    raw = torch.load(tmp_path / "again.pt", weights_only=True)
    assert len(raw["dropout_structure"]) == len(layers) and again.load_notes == ()
    assert raw["sd_checkpoint_name"] == "base.ckpt" and raw["step"] == 3


def test_a_last_entry_after_the_output_is_named(tmp_path):
    path = tmp_path / "last.pt"
    write_a1111(path, [1, 1], [0, 0.3, 0])
    notes = load_pt(path).load_notes
    assert any("after the output layer" in note for note in notes), notes


def test_shorter_dropout_structure_is_still_refused(tmp_path):
    path = tmp_path / "short.pt"
    k = {f"linear.{key}": t for key, t in a1111_module(8, [1, 2, 1], [0, 0, 0]).state_dict().items()}
    torch.save({8: (k, k), "layer_structure": [1, 2, 1], "dropout_structure": [0, 0.1]}, path)
    with pytest.raises(ValueError, match=r"short.pt.*dropout_structure"):
        load_pt(path)


LAYERS = ["1, 1", "1, 2, 1", "1, 1.5, 2, 1"]
DROPOUTS = ["", "0, 0, 0", "0, 0.3, 0", "0, 0.3", "0, 0.1, 0.1, 0"]


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_every_network_create_accepts_reads_back(tmp_path, suffix):
    """Create builds a HypernetworkConfig from its widgets, then saves: whatever config is
    accepted must give a file that loads (the A1111 API's `1, 1` + dropout case included)."""
    written = 0
    for layers, use, last, text in itertools.product(LAYERS, (False, True), (False, True), DROPOUTS):
        try:
            dropout = parse_float_list(text, "dropout_structure") if use and text else None
            config = HypernetworkConfig(name="c", layer_structure=parse_float_list(layers, "layer_structure"),
                                        use_dropout=use, dropout_structure=dropout, last_layer_dropout=last,
                                        sizes=[8])
        except ValueError:
            continue
        path = save_hypernetwork(Hypernetwork.create(config), tmp_path / f"c{written}{suffix}")
        loaded = load_hypernetwork(path)
        assert loaded.config.dropout_structure == config.dropout_structure, (layers, use, last, text)
        written += 1
    assert written >= 20
