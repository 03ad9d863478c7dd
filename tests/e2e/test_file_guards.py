"""Issue 22, points 4, 5 and 9 through the real server: training never replaces a user's `.optim`,
a Preprocess manifest is not a deletion list, and wrong links, folders in the way and a tampered
hash cache are clear errors before any work."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hypernet.network.fileio import optim_path, save_hypernetwork
from hypernet.preprocess.output import MANIFEST_NAME
from tests.e2e.test_dataset_nodes import load_node, make_source, preprocess_node, ui_text
from tests.e2e.test_training_safety import network, report_of, train_graph, unique
from tests.support.datasets import make_shapes_dataset
from tests.support.graphs import Graph
from tests.support.server import PromptError


@pytest.fixture(scope="module")
def dataset_folder(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "guard_shapes", count=4, size=64)
    return "guard_shapes"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- 4. the .optim of a final file


def test_a_users_optim_without_its_pt_is_not_replaced(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("keep")
    users_optim = optim_path(layout.hypernetworks / f"{name}.pt")
    users_optim.write_bytes(b"the user's optimizer state, kept apart from its network")
    graph, _ = train_graph(dataset_folder, steps=2, create_name=name)
    with pytest.raises(PromptError) as refused:
        comfy_server.run(graph)
    payload = refused.value.payload
    assert payload["exception_type"].endswith("FileExistsError")
    assert str(users_optim) in payload["exception_message"] and "overwrite" in payload["exception_message"]
    assert users_optim.read_bytes() == b"the user's optimizer state, kept apart from its network"
    assert not (layout.hypernetworks / f"{name}.pt").exists()
    assert not list((layout.hypernetworks / name).glob("*.pt")), "refused before any training"
    graph, train = train_graph(dataset_folder, steps=2, create_name=name, overwrite=True)
    report = report_of(comfy_server.run(graph), train)
    assert f"replaces the existing {users_optim.name} (overwrite is on)" in report
    assert (layout.hypernetworks / f"{name}.pt").is_file()


# ---------------------------------------------------------------- 9. a folder where a checkpoint goes


@pytest.mark.parametrize("blocked", ["{name}-1.pt", "{name}-2.pt.optim", "{name}.pt.optim"])
def test_a_folder_where_training_writes_a_file_is_refused_before_training(comfy_server, dataset_folder, blocked):
    layout = comfy_server.layout
    name = unique("blocked")
    target = (layout.hypernetworks if blocked.startswith("{name}.") else layout.hypernetworks / name) / \
        blocked.format(name=name)
    target.mkdir(parents=True)
    graph, _ = train_graph(dataset_folder, steps=2, save_every=1, create_name=name)
    with pytest.raises(PromptError) as refused:
        comfy_server.run(graph)
    message = refused.value.payload["exception_message"]
    assert str(target) in message and "folder" in message
    assert refused.value.payload["exception_type"].endswith("FileExistsError")
    assert not [p for p in (layout.hypernetworks / name).glob("*.pt") if p.is_file()], "refused before step 1"
    assert target.is_dir() and comfy_server.alive()


# ---------------------------------------------------------------- 5. the Preprocess manifest


def test_a_tampered_manifest_deletes_nothing_it_did_not_write(comfy_server):
    source = make_source(comfy_server.layout.input)
    out = comfy_server.layout.output / f"manifest_{source.name}"
    graph = Graph()
    preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(out))
    comfy_server.run(graph.to_api())
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    outputs = sorted(manifest["files"])
    assert outputs and manifest["sha256"] == {n: _sha(out / n) for n in outputs}
    # The user's files beside the outputs, listed in the manifest by hand.
    (out / "holiday.jpg").write_bytes(b"a user's photo")
    (out / "notes.txt").write_text("a user's notes", encoding="utf-8")
    (comfy_server.layout.output / "escape.txt").write_text("outside", encoding="utf-8")
    manifest["files"] += ["holiday.jpg", "notes.txt", "../escape.txt"]
    manifest["sha256"].update({"holiday.jpg": "0" * 64, "notes.txt": "not hex", "../escape.txt": "1" * 64})
    (out / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")

    def rerun(run: int) -> str:  # a new caption_text each time, so the host does not answer from its cache
        graph = Graph()
        prep = preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(out),
                               if_output_exists="overwrite", caption_text=f"run {run}")
        return ui_text(comfy_server.run(graph.to_api()), prep)

    report = rerun(1)
    assert f"removed {len(outputs)} file(s)" in report and "holiday.jpg" in report, report
    assert (out / "holiday.jpg").read_bytes() == b"a user's photo"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "a user's notes"
    assert (comfy_server.layout.output / "escape.txt").read_text(encoding="utf-8") == "outside"
    # An output the user changed after the run is theirs now: overwrite keeps it (and says so).
    retouched = next(n for n in outputs if n.endswith(".png"))
    (out / retouched).write_bytes(b"the user retouched this output")
    with pytest.raises(PromptError) as refused:
        rerun(2)
    assert retouched in refused.value.payload["exception_message"]
    assert (out / retouched).read_bytes() == b"the user retouched this output"


def test_a_manifest_without_hashes_deletes_nothing(comfy_server):
    source = make_source(comfy_server.layout.input)
    out = comfy_server.layout.output / f"oldmanifest_{source.name}"
    out.mkdir()
    (out / "00000-0-a.png").write_bytes(b"a user's file named like an output")
    (out / MANIFEST_NAME).write_text(json.dumps({"format": "hn_preprocess_run", "version": 1,
                                                 "files": ["00000-0-a.png"]}), encoding="utf-8")
    graph = Graph()
    prep = preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(out),
                           if_output_exists="overwrite")
    report = ui_text(comfy_server.run(graph.to_api()), prep)
    assert "removed 0 file(s)" in report and "00000-0-a.png" in report
    assert (out / "00000-0-a.png").read_bytes() == b"a user's file named like an output"


# ---------------------------------------------------------------- 9. upscale_model of the wrong type


def test_an_upscale_model_input_of_the_wrong_type_is_a_clear_error(comfy_server):
    source = make_source(comfy_server.layout.input)
    graph = Graph()
    load = load_node(graph, str(source))
    preprocess_node(graph, [load, 0], output_directory=str(comfy_server.layout.output / f"up_{source.name}"),
                    upscale_model=[load, 0])  # a dataset where an UPSCALE_MODEL belongs
    # The pinned host does not check optional links: our node refuses the link and the run fails.
    # Current ComfyUI checks it: its queue answer lists node_errors for Preprocess and it still runs
    # the other output node (Load Dataset), so the run itself succeeds; ask for that answer again.
    try:
        comfy_server.run(graph.to_api())
    except PromptError as refused:
        answer = refused.payload
    else:
        status, body = comfy_server.request("/prompt", {"prompt": graph.to_api(), "client_id": comfy_server.client_id})
        answer = json.loads(body)
    text = json.dumps(answer)
    assert "upscale_model" in text and ("UPSCALE_MODEL" in text or "return_type_mismatch" in text), text[:2000]
    assert not (comfy_server.layout.output / f"up_{source.name}").exists() or \
        not os.listdir(comfy_server.layout.output / f"up_{source.name}")
