"""Loss options through the real server, set on a Training Options node of an API prompt (issue 25):
Min-SNR weighting and offset noise on the SD1 (eps) and SD2 (v) tiny models, and the alpha channel
as loss weight on an RGBA dataset."""
from __future__ import annotations

import csv
import json
import math

import pytest

from tests.e2e.test_training_server import training_graph
from tests.support.datasets import make_half_transparent_dataset, make_shapes_dataset
from tests.support.graphs import options_node

RUNS = {"plain": {}, "offset": {"noise_offset": 0.1}, "snr": {"min_snr_gamma": 1.0}}


@pytest.fixture(scope="module")
def option_shapes(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "loss_option_shapes", count=4, size=64, seed=3)
    return "loss_option_shapes"


def _run(comfy_server, folder: str, name: str, kind: str = "sd1", steps: int = 4,
         **options) -> tuple[str, list[float], dict]:
    """A short run with a Training Options node set to `options`: its report, losses and stored config."""
    graph, ids = training_graph(folder, name, steps=steps, save_every=0, kind=kind)
    options = options_node(graph, comfy_server.object_info(), "HypernetworkTrainingOptions", **options)
    # The runs differ in name only: a template without [name] gives them the same prompts.
    graph.nodes[ids["train"]]["inputs"].update(options=[options, 0], template="[filewords]")
    report = comfy_server.run(graph.to_api()).outputs[ids["train"]]["text"][0]
    run_dir = comfy_server.layout.hypernetworks / name
    with open(run_dir / "hypernetwork_loss.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == steps and all(math.isfinite(v) for v in losses), losses
    config = json.loads((run_dir / "training_settings.json").read_text())["config"]
    return report, losses, config


@pytest.mark.parametrize("kind", ["sd1", "sd2v"])
def test_min_snr_and_offset_noise_reach_the_trainer(comfy_server, option_shapes, kind):
    runs = {label: _run(comfy_server, option_shapes, f"loss_{label}_{kind}", kind, latent_disk_cache=False,
                        **RUNS[label]) for label in RUNS}
    reports = {label: run[0] for label, run in runs.items()}
    losses = {label: run[1] for label, run in runs.items()}
    assert "loss options" not in reports["plain"]
    assert "loss options: offset noise 0.1 " in reports["offset"], reports["offset"]
    assert "loss options: min-SNR weighting, gamma 1 " in reports["snr"], reports["snr"]
    assert runs["offset"][2]["noise_offset"] == 0.1 and runs["snr"][2]["min_snr_gamma"] == 1.0
    assert runs["plain"][2]["noise_offset"] == 0 and runs["plain"][2]["min_snr_gamma"] == 0
    # The same seed draws the same timesteps and noise: each option alone changes the curve.
    assert losses["offset"] != losses["plain"] and losses["snr"] != losses["plain"]
    # Min-SNR weights are <= 1 for eps and v alike; on the first step the network is still the same.
    assert losses["snr"][0] < losses["plain"][0]


def test_an_rgba_dataset_trains_weighted_by_its_alpha(comfy_server):
    """Two RGBA datasets that differ only in the noise under their transparent right half. Weighted,
    the first step's loss barely tells them apart (weight 0 there; the pixels still reach the
    model's input, as in A1111); with the same noise opaque and unweighted it does, 10x more at
    least (about 30x measured). Off, transparent pixels are composited on white: the hidden
    colours change nothing at all."""
    for seed in (1, 2):
        for transparent in (True, False):
            make_half_transparent_dataset(comfy_server.layout.input / f"alpha_{seed}_{transparent}", seed, transparent)
    curves, reports = {}, {}
    for label, (transparent, weighted) in {"on": (True, True), "off": (True, False), "opaque": (False, False)}.items():
        for seed in (1, 2):
            reports[label, seed], curves[label, seed], _ = _run(
                comfy_server, f"alpha_{seed}_{transparent}", f"alpha_{label}_{seed}", steps=2,
                alpha_loss_weight=weighted)
    print({key: curve for key, curve in curves.items()})
    assert "alpha loss weight: 4 of 4 image(s) weighted by their alpha channel" in reports["on", 1], reports["on", 1]
    assert "alpha loss weight" not in reports["off", 1] and "alpha loss weight" not in reports["opaque", 1]
    assert curves["off", 1] == curves["off", 2], "off: composited on white, the hidden colours are gone"
    assert curves["on", 1] != curves["off", 1], "on: the colours are kept and the loss is weighted"

    # The first step's loss is the same network on the same timesteps and noise: it moves only with the data.
    spread = {label: abs(curves[label, 1][0] - curves[label, 2][0]) for label in ("on", "opaque")}
    print(spread)
    assert 0 < spread["on"] < 0.1 * spread["opaque"], "the transparent pixels reach the model's input, but barely"
