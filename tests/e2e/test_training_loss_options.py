"""Min-SNR weighting and offset noise through the real server on the SD1 (eps) and SD2 (v) tiny
models: set on a Training Options node of an API prompt, they reach the trainer (issue 25)."""
from __future__ import annotations

import csv
import json
import math

import pytest

from tests.e2e.test_training_server import training_graph
from tests.support.datasets import make_shapes_dataset
from tests.support.graphs import options_node

RUNS = {"plain": {}, "offset": {"noise_offset": 0.1}, "snr": {"min_snr_gamma": 1.0}}


@pytest.fixture(scope="module")
def option_shapes(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "loss_option_shapes", count=4, size=64, seed=3)
    return "loss_option_shapes"


def _run(comfy_server, folder: str, kind: str, label: str) -> tuple[str, list[float], dict]:
    """One 4-step run with the options node set as RUNS[label]: its report, losses and stored config."""
    name = f"loss_{label}_{kind}"
    graph, ids = training_graph(folder, name, steps=4, save_every=0, kind=kind)
    options = options_node(graph, comfy_server.object_info(), "HypernetworkTrainingOptions",
                           latent_disk_cache=False, **RUNS[label])
    # The runs differ in name only: a template without [name] gives them the same prompts.
    graph.nodes[ids["train"]]["inputs"].update(options=[options, 0], template="[filewords]")
    report = comfy_server.run(graph.to_api()).outputs[ids["train"]]["text"][0]
    run_dir = comfy_server.layout.hypernetworks / name
    with open(run_dir / "hypernetwork_loss.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    config = json.loads((run_dir / "training_settings.json").read_text())["config"]
    return report, losses, config


@pytest.mark.parametrize("kind", ["sd1", "sd2v"])
def test_min_snr_and_offset_noise_reach_the_trainer(comfy_server, option_shapes, kind):
    runs = {label: _run(comfy_server, option_shapes, kind, label) for label in RUNS}
    reports = {label: run[0] for label, run in runs.items()}
    losses = {label: run[1] for label, run in runs.items()}
    assert all(len(curve) == 4 and all(math.isfinite(v) for v in curve) for curve in losses.values()), losses
    assert "loss options" not in reports["plain"]
    assert "loss options: offset noise 0.1 " in reports["offset"], reports["offset"]
    assert "loss options: min-SNR weighting, gamma 1 " in reports["snr"], reports["snr"]
    assert runs["offset"][2]["noise_offset"] == 0.1 and runs["snr"][2]["min_snr_gamma"] == 1.0
    assert runs["plain"][2]["noise_offset"] == 0 and runs["plain"][2]["min_snr_gamma"] == 0
    # The same seed draws the same timesteps and noise: each option alone changes the curve.
    assert losses["offset"] != losses["plain"] and losses["snr"] != losses["plain"]
    # Min-SNR weights are <= 1 for eps and v alike; on the first step the network is still the same.
    assert losses["snr"][0] < losses["plain"][0]
