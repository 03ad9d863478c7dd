"""Continuing an A1111 file through the real server: the user's AdamW settings win over the
`.optim`'s, the file's base-model record is kept when this run's base model is unknown, and
schedule items past `steps` are named in the node's report."""
from __future__ import annotations

import torch

from hypernet.network.config import HypernetworkConfig
from hypernet.network.fileio import load_hypernetwork, save_hypernetwork, save_optimizer_state
from hypernet.network.module import Hypernetwork
from tests.e2e.test_training_server import training_graph

SAVED = dict(weight_decay=0.3, betas=(0.5, 0.6), eps=1e-6)


def write_a1111_file_with_optim(folder, name: str) -> None:
    network = Hypernetwork.create(HypernetworkConfig(name=name, sizes=[32, 64], activation_func="relu", seed=4))
    network.step = 2
    network.sd_checkpoint, network.sd_checkpoint_name = "abcdef1234", "old_base"
    path = save_hypernetwork(network, folder / f"{name}.pt")
    network = load_hypernetwork(path)
    params = list(network.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, **SAVED)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step()
    save_optimizer_state(path, "AdamW", optimizer.state_dict())


def test_continuing_an_a1111_file_keeps_user_settings_and_its_base_model_record(comfy_server):
    from tests.support.datasets import make_shapes_dataset

    make_shapes_dataset(comfy_server.layout.input / "compat_shapes", count=4, size=64)
    write_a1111_file_with_optim(comfy_server.layout.hypernetworks, "compat_cont")
    graph, ids = training_graph("compat_shapes", "unused", steps=4, save_every=0)
    train = graph.nodes[ids["train"]]["inputs"]
    create = train.pop("hypernetwork")[0]
    del graph.nodes[create]
    train.update(hypernetwork_name="compat_cont.pt", learning_rate="5e-3:3, 1e-3:10, 5e-4:20", overwrite=True,
                 resume=False)
    result = comfy_server.run(graph.to_api())
    report = result.outputs[ids["train"]]["text"][0]

    # 3: the saved moments continue, the user's (default) AdamW settings are used and said so
    assert "continuing compat_cont.pt with its optimizer state" in report, report
    assert "weight_decay 0.01 (the .optim had 0.3)" in report and "betas (0.9, 0.999)" in report, report
    final = comfy_server.layout.hypernetworks / "compat_cont.pt"
    groups = torch.load(final.with_name(final.name + ".optim"), weights_only=True)["optimizer_state_dict"]
    group = groups["param_groups"][0]
    assert (group["weight_decay"], tuple(group["betas"]), group["eps"]) == (0.01, (0.9, 0.999), 1e-8)

    # 4: the base model of this run is unknown; the file's record is kept, with A1111's types
    saved = torch.load(final, weights_only=True)
    assert saved["step"] == 4
    assert (saved["sd_checkpoint"], saved["sd_checkpoint_name"]) == ("abcdef1234", "old_base")
    assert "base model of this run unknown" in report and "old_base [abcdef1234]" in report, report

    # 5: the items past steps are in the report, not only in the log
    assert "learning_rate: items 5e-4:20 come after the schedule reaches max steps (4) and are ignored" in report
