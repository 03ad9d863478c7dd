"""Write safety through the real server, as a hostile or careless user meets it: training decides where
to write from validated file names only, never replaces or deletes a file it did not write, moves
an earlier run aside instead of writing over it, and tells the truth in its report."""
from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import load_hypernetwork, optim_path, save_hypernetwork
from hypernet.network.module import Hypernetwork
from tests.support.datasets import make_shapes_dataset
from tests.support.graphs import Graph, tiny_txt2img
from tests.support.server import PromptError

SIZES = [32, 64]  # the tiny SD1 model's attention widths


@pytest.fixture(scope="module")
def dataset_folder(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "safety_shapes", count=4, size=64)
    return "safety_shapes"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def network(name: str, seed: int = 0) -> Hypernetwork:
    return Hypernetwork.create(HypernetworkConfig(name=name, sizes=SIZES, activation_func="relu", seed=seed))


def train_graph(dataset: str, *, steps: int, save_every: int = 0, hypernetwork_name: str = "none",
                create_name: str | None = None, create_save: bool = False, seed: int = 0, **train_inputs):
    """Load Dataset -> Train; the network is a connected Create (create_name) or a file (hypernetwork_name)."""
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    load = graph.add("HypernetworkLoadDataset", directory=dataset, recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=1)
    inputs = dict(model=[loader, 0], clip=[loader, 1], vae=[loader, 2], dataset=[load, 0],
                  hypernetwork_name=hypernetwork_name, template="[filewords]", learning_rate="5e-3", steps=steps,
                  batch_size=2, grad_accumulation_steps=1, seed=seed, save_every=save_every, resume=True)
    if create_name is not None:
        create = graph.add("CreateHypernetwork", name=create_name, layer_structure="1, 2, 1", activation_func="relu",
                           weight_initialization="Normal", add_layer_norm=False, use_dropout=False,
                           dropout_structure="0, 0, 0", activate_output=False, last_layer_dropout=False,
                           sizes="32, 64", seed=seed, save=create_save, overwrite=create_save)
        inputs["hypernetwork"] = [create, 0]
    inputs.update(train_inputs)
    train = graph.add("TrainHypernetwork", **inputs)
    return graph.to_api(), train


def report_of(result, node: str) -> str:
    return result.outputs[node]["text"][0]


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()


# ---------------------------------------------------------------- 1. path escape, 2. which name


@pytest.mark.parametrize("inner", ["../../escaped_{id}", "ABSOLUTE"])
def test_a_stored_name_that_escapes_is_only_metadata(comfy_server, dataset_folder, inner):
    layout = comfy_server.layout
    tag = uuid.uuid4().hex[:6]
    target = layout.root / f"abs_escape_{tag}" if inner == "ABSOLUTE" else layout.hypernetworks / inner.format(id=tag)
    file_name = unique("escaper")
    hostile = network("placeholder")
    hostile.rename(str(target))  # the name stored inside the file is a path out of the folder
    save_hypernetwork(hostile, layout.hypernetworks / f"{file_name}.pt")
    before = tree(layout.root) - tree(layout.hypernetworks / file_name)
    graph, train = train_graph(dataset_folder, steps=2, save_every=1, hypernetwork_name=f"{file_name}.pt")
    result = comfy_server.run(graph)
    assert not os.path.lexists(target) and not os.path.lexists(f"{target}.pt")
    run_dir = layout.hypernetworks / file_name
    assert {f"{file_name}-1.pt", f"{file_name}-2.pt", "hypernetwork_loss.csv"} <= {p.name for p in run_dir.iterdir()}
    new = tree(layout.root) - before
    assert all(p.startswith(f"host/models/hypernetworks/{file_name}") or p.startswith("host/temp")
               or p.startswith("host/output") or p.startswith("host/user/hypernetwork_latent_cache")
               for p in new), sorted(new)
    assert f"final file: {layout.hypernetworks / file_name}.pt" in report_of(result, train)
    assert load_hypernetwork(layout.hypernetworks / f"{file_name}.pt").name == file_name


def test_continuing_a_downloaded_file_trains_under_its_file_name(comfy_server, dataset_folder):
    layout = comfy_server.layout
    inner, file_name = unique("mine"), unique("downloaded")
    save_hypernetwork(network(inner, seed=1), layout.hypernetworks / f"{file_name}.pt")
    mine = layout.hypernetworks / f"{inner}.pt"
    save_hypernetwork(network(inner, seed=2), mine)  # the user's own 'mine.pt' ...
    other_run = layout.hypernetworks / inner
    other_run.mkdir()
    lure = network(inner, seed=3)
    lure.step = 4
    save_hypernetwork(lure, other_run / f"{inner}-4.pt")  # ... and a run folder that must not be resumed
    untouched = {p: p.read_bytes() for p in [mine, other_run / f"{inner}-4.pt"]}
    graph, train = train_graph(dataset_folder, steps=3, save_every=3, hypernetwork_name=f"{file_name}.pt")
    report = report_of(comfy_server.run(graph), train)
    assert f"continuing {file_name}.pt" in report and "resumed" not in report
    assert (layout.hypernetworks / file_name / f"{file_name}-3.pt").is_file()
    assert f"final file: {layout.hypernetworks / file_name}.pt" in report
    assert {p: p.read_bytes() for p in untouched} == untouched
    assert sorted(p.name for p in other_run.iterdir()) == [f"{inner}-4.pt"]


# ---------------------------------------------------------------- 3. an existing final file


def test_training_never_replaces_a_file_it_did_not_write(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("precious")
    precious = layout.hypernetworks / f"{name}.pt"
    save_hypernetwork(network("someone_else", seed=9), precious)
    original = precious.read_bytes()
    graph, _ = train_graph(dataset_folder, steps=2, create_name=name)
    with pytest.raises(PromptError) as refused:
        comfy_server.run(graph)
    message = refused.value.payload["exception_message"]
    assert refused.value.payload["exception_type"].endswith("FileExistsError")
    assert str(precious) in message and "overwrite" in message
    assert precious.read_bytes() == original
    assert not list((layout.hypernetworks / name).glob("*.pt")), "refused before any training"

    graph, train = train_graph(dataset_folder, steps=2, create_name=name, overwrite=True)
    report = report_of(comfy_server.run(graph), train)
    assert "overwrite is on" in report and precious.read_bytes() != original
    # Queued again, longer: the existing file is now this run's own output and may be replaced.
    graph, train = train_graph(dataset_folder, steps=3, create_name=name)
    report = report_of(comfy_server.run(graph), train)
    assert "written by an earlier run" in report and load_hypernetwork(precious).step == 3
    assert comfy_server.alive()


# ---------------------------------------------------------------- 4. a fresh start, 5. lost .optim files


def test_a_fresh_start_moves_the_earlier_run_aside(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("fresh")
    run_dir = layout.hypernetworks / name
    graph, _ = train_graph(dataset_folder, steps=4, save_every=2, create_name=name)
    comfy_server.run(graph)
    earlier = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert f"{name}-4.pt" in earlier

    graph, train = train_graph(dataset_folder, steps=2, save_every=2, create_name=name, resume=False)
    report = report_of(comfy_server.run(graph), train)
    moved = run_dir / "previous-1"
    assert f"moved to {moved}" in report
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == earlier, "moved, byte for byte, nothing deleted"
    assert not (run_dir / f"{name}-4.pt").exists(), "no stale later checkpoint for a resume to pick up"

    graph, train = train_graph(dataset_folder, steps=4, save_every=2, create_name=name)
    report = report_of(comfy_server.run(graph), train)
    assert f"resumed from {name}-2.pt" in report
    steps = [line.split(",")[0] for line in (run_dir / "hypernetwork_loss.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4"]


def test_checkpoints_without_optim_resume_their_weights_and_stay(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("nooptim")
    run_dir = layout.hypernetworks / name
    graph, _ = train_graph(dataset_folder, steps=6, save_every=2, create_name=name)
    comfy_server.run(graph)
    for optim in run_dir.glob("*.optim"):
        optim.unlink()
    kept = {step: (run_dir / f"{name}-{step}.pt").read_bytes() for step in (2, 4, 6)}
    graph, train = train_graph(dataset_folder, steps=8, save_every=2, create_name=name)
    report = report_of(comfy_server.run(graph), train)
    assert f"resumed from {name}-6.pt (step 6) with a fresh optimizer" in report
    assert "started a fresh run" not in report
    assert {step: (run_dir / f"{name}-{step}.pt").read_bytes() for step in (2, 4, 6)} == kept
    assert load_hypernetwork(run_dir / f"{name}-8.pt").step == 8
    assert comfy_server.log().count(f"resuming {run_dir / name}-6.pt with a fresh optimizer") >= 1


# ---------------------------------------------------------------- 7. clear errors instead of exceptions


def info(server, name: str) -> tuple[int, dict]:
    status, body = server.request("/hypernetwork/info?" + urllib.parse.urlencode({"name": name}))
    return status, json.loads(body)


def test_the_info_route_answers_bad_files_and_names_without_a_500(comfy_server):
    folder = comfy_server.layout.hypernetworks
    good = folder / f"{unique('st')}.safetensors"
    save_hypernetwork(network("st"), good)
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = json.loads(fh.metadata()["hypernetwork"])
    headers = {"sizes_text": json.dumps(dict(meta, sizes="abc")),
               "deep": "[" * 100_000 + "]" * 100_000,
               "deep_value": json.dumps(dict(meta))[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"}
    for label, header in headers.items():
        path = folder / f"{unique(label)}.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt", "hypernetwork": header})
        status, body = info(comfy_server, path.name)
        assert status == 422, (label, status, body)
        assert path.name in body["error"]
    status, body = info(comfy_server, "x" * 5000 + ".pt")
    assert status == 400 and "pick one from the list" in body["error"] and len(body["error"]) < 1000
    assert comfy_server.alive()


def test_a_network_that_makes_nan_images_is_announced(comfy_server):
    loud = network("loud")
    with torch.no_grad():
        for param in loud.parameters():
            param.fill_(1e38)
    name = f"{unique('loud')}.pt"
    save_hypernetwork(loud, comfy_server.layout.hypernetworks / name)
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    apply = graph.add("ApplyHypernetwork", model=[loader, 0], hypernetwork_name=name, strength=1.0)
    ids = tiny_txt2img(graph, [apply, 0], [loader, 1], [loader, 2], steps=1, size=32)
    graph.add("HNTestLatentStats", samples=[ids["sampler"], 0], filename=unique("loud_stats"))
    comfy_server.run(graph.to_api())
    assert f"hypernetwork {comfy_server.layout.hypernetworks / name}: " in comfy_server.log()
    status, body = info(comfy_server, name)  # what the Apply node shows under the file name
    assert status == 200 and body["warnings"] and "NaN" in body["warnings"][0]


# ---------------------------------------------------------------- 8. honest reports, stale temp files, modes


def test_divergence_names_a_checkpoint_only_when_one_exists(comfy_server, dataset_folder):
    name = unique("diverge")
    graph, _ = train_graph(dataset_folder, steps=8, save_every=0, create_name=name, learning_rate="1e6",
                           rollback=False)
    with pytest.raises(PromptError) as failed:
        comfy_server.run(graph)
    message = failed.value.payload["exception_message"]
    assert "diverged" in message
    assert "last good checkpoint" not in message and "no checkpoint was saved" in message


def test_rollbacks_are_in_the_nodes_report(comfy_server, dataset_folder):
    name = unique("rollback")
    graph, train = train_graph(dataset_folder, steps=8, save_every=2, create_name=name, learning_rate="1e3",
                               rollback=True, rollback_lr_factor=0.001, max_rollbacks=4)
    report = report_of(comfy_server.run(graph), train)
    assert "rollback at step" in report and "rolled back to step" in report


def test_stale_temp_files_are_cleaned_and_files_get_the_umask_mode(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("tidy")
    run_dir = layout.hypernetworks / name
    run_dir.mkdir()
    old = time.time() - 3600
    stale = [run_dir / f".{name}-2.pt.hntmp-abcd1234.tmp", layout.hypernetworks / f".{name}.pt.x1y2z3w4.tmp"]
    foreign = [run_dir / ".notes.tmp", run_dir / "my.tmp", layout.hypernetworks / f".{name}.pt.hntmp-fresh123.tmp"]
    for path in stale + foreign:
        path.write_bytes(b"x" * 1000)
    for path in stale + foreign[:2]:
        os.utime(path, (old, old))
    graph, train = train_graph(dataset_folder, steps=2, save_every=2, create_name=name)
    report = report_of(comfy_server.run(graph), train)
    assert not any(p.exists() for p in stale), "this pack's stale temp files are removed"
    assert all(p.exists() for p in foreign), "others (not ours, or possibly still being written) stay"
    assert "removed 2 stale temp file(s)" in report
    umask = os.umask(0o022)
    os.umask(umask)  # the server inherited this process's umask
    expected = 0o666 & ~umask
    for path in (run_dir / f"{name}-2.pt", optim_path(run_dir / f"{name}-2.pt"), run_dir / "hypernetwork_loss.csv",
                 layout.hypernetworks / f"{name}.pt"):
        assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))
