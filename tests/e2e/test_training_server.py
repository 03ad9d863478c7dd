"""Training through the real server, as a user's script would drive it: the whole graph, its
files, Cancel mid-run, and the stock loader reading the result."""
from __future__ import annotations

import re
import threading
import time

import pytest
import torch

from tests.support.datasets import make_shapes_dataset
from tests.support.graphs import Graph, tiny_txt2img


def training_graph(folder_name: str, name: str, steps: int, save_every: int, preview_every: int = 0,
                   seed: int = 0, learning_rate: str = "5e-3", kind: str = "sd1", **options) -> tuple[Graph, dict]:
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind=kind, seed=0)
    load = graph.add("HypernetworkLoadDataset", directory=folder_name, recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=2)
    prep = graph.add("HypernetworkPreprocess", dataset=[load, 0], width=64, height=64, mode="crop", flip=False,
                     existing_caption="copy", caption_text="", output_directory="", if_output_exists="refuse")
    create = graph.add("CreateHypernetwork", name=name, layer_structure="1, 2, 1", activation_func="relu",
                       weight_initialization="Normal", add_layer_norm=False, use_dropout=False,
                       dropout_structure="0, 0, 0", activate_output=False, last_layer_dropout=False,
                       sizes="32, 64", seed=seed, save=True, overwrite=True)
    train = graph.add("TrainHypernetwork", model=[loader, 0], clip=[loader, 1], vae=[loader, 2], dataset=[prep, 0],
                      hypernetwork=[create, 0], hypernetwork_name="none", template="[filewords], [name]",
                      learning_rate=learning_rate, steps=steps, batch_size=2, grad_accumulation_steps=1, seed=seed,
                      save_every=save_every, resume=True, preview_every=preview_every, preview_steps=2, **options)
    return graph, {"loader": loader, "train": train}


@pytest.fixture(scope="module")
def dataset_folder(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "shapes", count=4, size=64)
    return "shapes"


def test_graph_trains_and_writes_every_file(comfy_server, dataset_folder):
    graph, ids = training_graph(dataset_folder, "e2e_net", steps=10, save_every=5, preview_every=10)
    events = []
    result = comfy_server.run(graph.to_api(), on_event=events.append)
    run_dir = comfy_server.layout.hypernetworks / "e2e_net"
    names = sorted(p.name for p in run_dir.iterdir())
    for expected in ("e2e_net-5.pt", "e2e_net-5.pt.optim", "e2e_net-10.pt", "e2e_net-10.pt.optim",
                     "e2e_net-10.png", "hypernetwork_loss.csv", "training_settings.json"):
        assert expected in names, names
    assert (comfy_server.layout.hypernetworks / "e2e_net.pt").is_file()
    assert not [n for n in names if n.endswith(".tmp")]
    csv_lines = (run_dir / "hypernetwork_loss.csv").read_text().splitlines()
    assert csv_lines[0] == "step,epoch,epoch_step,loss,learn_rate,event" and len(csv_lines) == 11
    ui = result.outputs[ids["train"]]
    assert "training finished at step 10" in ui["text"][0]
    # The hidden PROMPT/UNIQUE_ID inputs arrive through the real executor: the MODEL is traced to its loader.
    assert (f"base model unknown (the MODEL comes from node {ids['loader']} (HNTestTinyCheckpointLoader), "
            "which is not a checkpoint loader") in ui["text"][0]
    assert ui["hn_preview"], "the preview is shown in the node's UI"
    assert "images" not in ui, "the frontend's own image preview would draw the previews a second time"
    preview_events = [e["data"] for e in events if e.get("type") == "hypernetwork.train.preview"]
    assert preview_events and preview_events[0]["seed"] == 0 and preview_events[0]["prompt"].endswith(", e2e_net")
    progress = [e for e in events if e.get("type") == "hypernetwork.train.progress"]
    assert [e["data"]["step"] for e in progress] == list(range(1, 11))
    assert all(e["data"]["node"] == ids["train"] for e in progress)


def test_cancel_before_the_first_save_keeps_the_step_and_resume_continues(comfy_server, dataset_folder):
    """Cancel at step k < save_every: `<name>-k.pt` + `.optim` are saved (named by step) and queueing
    again continues from step k with the optimizer state."""
    graph, ids = training_graph(dataset_folder, "early_cancel", steps=400, save_every=1000)
    seen = []

    def watch(event):
        if event.get("type") == "hypernetwork.train.progress":
            seen.append(event["data"]["step"])
            if len(seen) == 2:
                threading.Thread(target=comfy_server.interrupt, daemon=True).start()

    comfy_server.run(graph.to_api(), on_event=watch, timeout=300)
    run_dir = comfy_server.layout.hypernetworks / "early_cancel"
    saved = sorted(int(p.stem.split("-")[-1]) for p in run_dir.glob("early_cancel-*.pt"))
    assert len(saved) == 1 and 2 <= saved[0] < 400, saved
    step = saved[0]
    assert (run_dir / f"early_cancel-{step}.pt.optim").is_file()
    stored = torch.load(run_dir / f"early_cancel-{step}.pt", weights_only=True)
    assert stored["step"] == step
    created = torch.load(comfy_server.layout.hypernetworks / "early_cancel.pt", weights_only=True)
    assert created["step"] == 0, "Create's file stays: a cancelled run writes no final file"

    resume_graph, ids = training_graph(dataset_folder, "early_cancel", steps=step + 2, save_every=1000)
    report = comfy_server.run(resume_graph.to_api(), timeout=300).outputs[ids["train"]]["text"][0]
    assert f"resumed from early_cancel-{step}.pt" in report and "fresh optimizer" not in report
    assert f"training finished at step {step + 2}" in report


def test_a_setting_given_to_train_that_an_options_node_overrides_is_reported(comfy_server, dataset_folder):
    """As the demo did: preview_every given to Train directly loses to the Preview Options node."""
    graph, ids = training_graph(dataset_folder, "override_net", steps=1, save_every=0, preview_every=1)
    options = graph.add("HypernetworkPreviewOptions", preview_every=0, preview_prompt="", preview_negative="",
                        preview_seed=0, preview_seed_mode="fixed", preview_steps=2, preview_cfg=7.0,
                        preview_sampler="euler")
    graph.nodes[ids["train"]]["inputs"]["options"] = [options, 0]
    report = comfy_server.run(graph.to_api(), timeout=300).outputs[ids["train"]]["text"][0]
    assert "preview_every 1 given to Train Hypernetwork directly is overridden by the options node's 0" in report
    assert not list((comfy_server.layout.hypernetworks / "override_net").glob("*.png")), "the options node won"


def test_stock_loader_reads_the_trained_file(comfy_server, dataset_folder):
    graph, _ = training_graph(dataset_folder, "stock_net", steps=3, save_every=0)
    comfy_server.run(graph.to_api())
    check = Graph()
    loader = check.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    stock = check.add("HypernetworkLoader", model=[loader, 0], hypernetwork_name="stock_net.pt", strength=1.0)
    ours = check.add("ApplyHypernetwork", model=[loader, 0], hypernetwork_name="stock_net.pt", strength=1.0)
    for model, name in ((stock, "stock"), (ours, "ours")):
        ids = tiny_txt2img(check, [model, 0], [loader, 1], [loader, 2], steps=2)
        check.add("HNTestLatentStats", samples=[ids["sampler"], 0], filename=f"trained_{name}")
    comfy_server.run(check.to_api())
    import json

    values = {name: torch.tensor(json.loads((comfy_server.layout.output / f"trained_{name}.json").read_text())["values"])
              for name in ("stock", "ours")}
    assert (values["stock"] - values["ours"]).abs().max().item() <= 1e-5


def test_interrupt_keeps_a_loadable_checkpoint_and_queue_again_resumes(comfy_server, dataset_folder):
    graph, ids = training_graph(dataset_folder, "cancel_net", steps=400, save_every=3)
    checkpoints = []

    def watch(event):
        if event.get("type") == "hypernetwork.train.checkpoint":
            checkpoints.append(event["data"]["step"])
            if len(checkpoints) == 2:
                threading.Thread(target=comfy_server.interrupt, daemon=True).start()

    started = time.monotonic()
    comfy_server.run(graph.to_api(), on_event=watch, timeout=300)
    assert checkpoints and time.monotonic() - started < 300
    run_dir = comfy_server.layout.hypernetworks / "cancel_net"
    saved = sorted(int(p.stem.split("-")[-1]) for p in run_dir.glob("cancel_net-*.pt"))
    assert saved and max(saved) < 400, "the run must stop long before the end"
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))
    last = run_dir / f"cancel_net-{max(saved)}.pt"
    assert (run_dir / f"{last.name}.optim").is_file()

    # Queue again with a smaller total: training resumes from the last checkpoint and finishes.
    resume_graph, ids = training_graph(dataset_folder, "cancel_net", steps=max(saved) + 2, save_every=3)
    result = comfy_server.run(resume_graph.to_api(), timeout=300)
    report = result.outputs[ids["train"]]["text"][0]
    assert f"resumed from cancel_net-{max(saved)}.pt" in report
    assert f"training finished at step {max(saved) + 2}" in report
    assert comfy_server.alive()


def test_validation_ema_best_checkpoint_and_early_stop(comfy_server, dataset_folder):
    """Validation rows in the CSV and the live events, `-best.pt` equal to the reported best checkpoint,
    `-ema.pt` files the stock loader reads, an early stop, and a resume that restores the EMA."""
    options = dict(validation_images="1", stop_after_no_improvement=2, ema_decay=0.9)
    graph, ids = training_graph(dataset_folder, "judged", steps=40, save_every=2, learning_rate="0.3", **options)
    events = []
    result = comfy_server.run(graph.to_api(), on_event=events.append)
    report = result.outputs[ids["train"]]["text"][0]
    print(report)
    run_dir = comfy_server.layout.hypernetworks / "judged"
    csv_lines = (run_dir / "hypernetwork_loss.csv").read_text().splitlines()
    print("\n".join(csv_lines))
    assert csv_lines[0] == "step,epoch,epoch_step,loss,learn_rate,event,val_loss,val_loss_ema"
    validated = [line.split(",") for line in csv_lines[1:] if line.split(",")[6]]
    assert [int(cells[0]) for cells in validated] == list(range(2, int(validated[-1][0]) + 1, 2))
    live = [e["data"] for e in events if e.get("type") == "hypernetwork.train.validation"]
    assert [d["step"] for d in live] == [int(cells[0]) for cells in validated]
    assert all(d["node"] == ids["train"] and d["val_loss_ema"] is not None for d in live)
    assert "stopped early at step" in report
    best = re.search(r"best checkpoint \(lowest validation loss ([0-9.]+)\): (judged-(\d+)\.pt)", report)
    assert best, report
    assert (run_dir / "judged-best.pt").read_bytes() == (run_dir / best.group(2)).read_bytes()
    lowest = min(float(cells[6]) for cells in validated)
    assert float(best.group(1)) == pytest.approx(lowest, abs=1e-6)
    last = int(validated[-1][0])
    assert (run_dir / f"judged-{last}-ema.pt").is_file()

    check = Graph()
    loader = check.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    stock = check.add("HypernetworkLoader", model=[loader, 0], hypernetwork_name=f"judged/judged-{last}-ema.pt",
                      strength=1.0)
    sampled = tiny_txt2img(check, [stock, 0], [loader, 1], [loader, 2], steps=2)
    check.add("HNTestLatentStats", samples=[sampled["sampler"], 0], filename="judged_ema")
    comfy_server.run(check.to_api())

    again, ids = training_graph(dataset_folder, "judged", steps=last + 2, save_every=2, learning_rate="0.3",
                                **options)
    report = comfy_server.run(again.to_api()).outputs[ids["train"]]["text"][0]
    assert f"resumed from judged-{last}.pt" in report and f"EMA restored from judged-{last}-ema.pt" in report
