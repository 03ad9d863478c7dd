"""The example workflows, converted by tests/support/workflows.py and run through the real server.

The workflows are for real users, so they load a checkpoint with the stock CheckpointLoaderSimple.
Here that node is swapped for the test-only HNTestTinyCheckpointLoader (same MODEL, CLIP, VAE
outputs; `workflows.with_tiny_loader`), and sizes and step counts are cut to tiny values: 64x64
images, 8 training steps, 2 sampling steps. The WD14 step uses the stand-in ONNX tagger.
"""
from __future__ import annotations

import csv
import json
import uuid

import pytest
from PIL import Image

from tests.support import fake_tagger
from tests.support import workflows as wf
from tests.support.datasets import make_shapes_dataset
from tests.support.server import PromptError

WORKFLOW_NAMES = ["train_hypernetwork", "apply_hypernetwork", "compare_checkpoints"]
STEPS = 8
SAVE_EVERY = 4
SIZE = 64
TAGGER = "fake"


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.object_info()


@pytest.fixture(scope="module")
def inputs(comfy_server):
    """A small shapes dataset in the server's input folder and the stand-in tagger."""
    folder = make_shapes_dataset(comfy_server.layout.input / f"wf_shapes_{uuid.uuid4().hex[:6]}", count=4, size=SIZE)
    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name=TAGGER)
    return folder.name


def tiny_train_prompt(object_info, dataset: str, name: str) -> dict:
    prompt = wf.with_tiny_loader(wf.to_api(wf.load_workflow("train_hypernetwork"), object_info))
    wf.set_inputs(prompt, "HypernetworkLoadDataset", directory=dataset)
    wf.set_inputs(prompt, "HypernetworkPreprocess", width=SIZE, height=SIZE)
    wf.set_inputs(prompt, "HypernetworkWD14Tag", model=TAGGER)
    wf.set_inputs(prompt, "CreateHypernetwork", name=name)
    wf.set_inputs(prompt, "TrainHypernetwork", steps=STEPS, learning_rate="1e-3", save_every=SAVE_EVERY)
    wf.set_inputs(prompt, "HypernetworkPreviewOptions", preview_every=SAVE_EVERY, preview_steps=2)
    return prompt


@pytest.fixture(scope="module")
def trained(comfy_server, object_info, inputs):
    """train_hypernetwork.json run once: (network name, prompt, result)."""
    name = f"wf_{uuid.uuid4().hex[:8]}"
    prompt = tiny_train_prompt(object_info, inputs, name)
    return name, prompt, comfy_server.run(prompt)


# ------------------------------------------------------------------ the converter


def test_widget_values_map_to_inputs_past_the_seed_control_widget(object_info):
    prompt = wf.to_api(wf.load_workflow("train_hypernetwork"), object_info)
    create = prompt[wf.nodes_of(prompt, "CreateHypernetwork")[0]]["inputs"]
    # the UI stores [..., seed, "fixed" (control_after_generate), save, overwrite, ...]
    assert create["seed"] == 0 and create["save"] is False and create["overwrite"] is False
    train = prompt[wf.nodes_of(prompt, "TrainHypernetwork")[0]]["inputs"]
    assert train["seed"] == 0 and train["save_every"] == 500 and train["resume"] is True
    assert train["hypernetwork"] == [wf.nodes_of(prompt, "CreateHypernetwork")[0], 0]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_required_input_is_converted(object_info, name):
    prompt = wf.to_api(wf.load_workflow(name), object_info)
    assert not wf.nodes_of(prompt, "Note"), "frontend-only notes must not reach the server"
    for node_id, node in prompt.items():
        required = object_info[node["class_type"]]["input"]["required"]
        missing = sorted(set(required) - set(node["inputs"]))
        assert not missing, f"node {node_id} ({node['class_type']}) lacks {missing}"
        for key, value in node["inputs"].items():
            if isinstance(value, list):
                assert value[0] in prompt, f"node {node_id}.{key} links to a node that is not in the prompt"


def test_converter_handles_seed_controls_reroutes_and_converted_widgets(object_info):
    workflow = {
        "nodes": [
            {"id": 1, "type": "HNTestTinyCheckpointLoader", "widgets_values": ["sd1", 7, "fixed"], "inputs": []},
            {"id": 2, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 1}]},
            {"id": 3, "type": "KSampler", "widgets_values": [11, "randomize", 3, 5.0, "euler", "normal", 0.5],
             "inputs": [{"name": "model", "type": "MODEL", "link": 2},
                        {"name": "steps", "type": "INT", "link": 3, "widget": {"name": "steps"}}]},
            {"id": 4, "type": "Note", "widgets_values": ["a note"]},
            {"id": 5, "type": "HNTestTinyCheckpointLoader", "widgets_values": ["sd1", 0, "fixed"], "mode": 2},
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 1, 0, 3, 1, "INT"]],
    }
    prompt = wf.to_api(workflow, object_info)
    assert set(prompt) == {"1", "3"}, "notes, reroutes and muted nodes are left out"
    assert prompt["1"]["inputs"] == {"kind": "sd1", "seed": 7}
    sampler = prompt["3"]["inputs"]
    assert (sampler["seed"], sampler["cfg"], sampler["sampler_name"], sampler["denoise"]) == (11, 5.0, "euler", 0.5)
    assert sampler["model"] == ["1", 0], "a reroute is followed to its source"
    assert sampler["steps"] == ["1", 0], "a converted widget with a link takes the link"


def test_converter_names_the_node_when_values_are_missing(object_info):
    workflow = {"nodes": [{"id": 9, "type": "KSampler", "widgets_values": [1, "fixed"], "inputs": []}], "links": []}
    with pytest.raises(wf.WorkflowError, match=r"node 9 \(KSampler\).*'steps'"):
        wf.to_api(workflow, object_info)
    workflow["nodes"][0]["mode"] = 4
    with pytest.raises(wf.WorkflowError, match="bypassed"):
        wf.to_api(workflow, object_info)


# ------------------------------------------------------------------ the workflows as shipped


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_shipped_workflows_are_for_real_users(object_info, name):
    workflow = wf.load_workflow(name)
    types = {node["type"] for node in workflow["nodes"]}
    assert wf.STOCK_LOADER in types and wf.TINY_LOADER not in types
    assert all(t in object_info or t == "Note" for t in types), sorted(types - set(object_info))
    for node in workflow["nodes"]:
        info = object_info.get(node["type"])
        if info is None:
            continue
        for input_name, spec in wf.widget_inputs(info):
            if wf.extra_widgets_after(input_name, spec) and spec[0] == "INT":
                control = node["widgets_values"][wf.widget_index(info, input_name) + 1]
                assert control == "fixed", f"{node['type']}.{input_name} would change on every queue"
    thumbnail = wf.EXAMPLE_WORKFLOWS / f"{name}.png"
    assert thumbnail.is_file(), f"{thumbnail.name} is missing"
    assert thumbnail.stat().st_size < 200_000
    with Image.open(thumbnail) as png:
        assert png.format == "PNG" and png.width >= 200
    # the new frontend's template browser (1.2x) asks for <name>.jpg, the old one for .png
    jpeg = wf.EXAMPLE_WORKFLOWS / f"{name}.jpg"
    assert jpeg.is_file(), f"{jpeg.name} is missing: the new frontend's template browser shows a blank card"
    assert jpeg.stat().st_size < 200_000
    with Image.open(jpeg) as jpg:
        assert jpg.format == "JPEG" and jpg.size == png.size


# ------------------------------------------------------------------ running them


def test_train_workflow_trains_saves_and_reports(comfy_server, trained):
    name, prompt, result = trained
    train_id = wf.nodes_of(prompt, "TrainHypernetwork")[0]
    folder = comfy_server.layout.hypernetworks / name
    for step in range(SAVE_EVERY, STEPS + 1, SAVE_EVERY):
        assert (folder / f"{name}-{step}.pt").is_file()
        assert (folder / f"{name}-{step}.pt.optim").is_file()
    assert (comfy_server.layout.hypernetworks / f"{name}.pt").is_file()
    with open(folder / "hypernetwork_loss.csv", newline="") as fh:
        assert [int(row["step"]) for row in csv.DictReader(fh)] == list(range(1, STEPS + 1))

    progress = [e["data"] for e in result.custom_events("hypernetwork.train.progress")]
    assert [p["step"] for p in progress] == list(range(1, STEPS + 1))
    assert {p["node"] for p in progress} == {train_id}, "events must name the node the UI shows them on"
    assert all(p["max_steps"] == STEPS and "eta" in p and "lr" in p for p in progress)
    previews = [e["data"] for e in result.custom_events("hypernetwork.train.preview")]
    assert [p["step"] for p in previews] == [SAVE_EVERY, STEPS]

    ui = result.outputs[train_id]
    history = json.loads(ui["loss"][0])
    assert history["steps"] == list(range(1, STEPS + 1)) and len(history["losses"]) == STEPS
    save_id = wf.nodes_of(prompt, "SaveImage")[0]
    plot = result.outputs[save_id]["images"][0]
    assert (comfy_server.layout.output / plot["subfolder"] / plot["filename"]).is_file()


def test_apply_workflow_samples_with_the_trained_file(comfy_server, object_info, trained):
    name = trained[0]
    prompt = wf.with_tiny_loader(wf.to_api(wf.load_workflow("apply_hypernetwork"), object_info))
    wf.set_inputs(prompt, "ApplyHypernetwork", hypernetwork_name=f"{name}.pt")
    wf.set_inputs(prompt, "KSampler", steps=2)
    wf.set_inputs(prompt, "EmptyLatentImage", width=SIZE, height=SIZE)
    result = comfy_server.run(prompt)
    image = result.outputs[wf.nodes_of(prompt, "SaveImage")[0]]["images"][0]
    with Image.open(comfy_server.layout.output / image["subfolder"] / image["filename"]) as png:
        assert png.size == (SIZE, SIZE)


def test_apply_workflow_before_training_says_to_train_first(comfy_server, object_info):
    missing = f"untrained_{uuid.uuid4().hex[:8]}"
    prompt = wf.with_tiny_loader(wf.to_api(wf.load_workflow("apply_hypernetwork"), object_info))
    wf.set_inputs(prompt, "ApplyHypernetwork", hypernetwork_name=f"{missing}.pt")
    with pytest.raises(PromptError) as caught:
        comfy_server.run(prompt)
    message = json.dumps(caught.value.payload)
    assert f"{missing}.pt" in message and "Train it first" in message and f"'{missing}'" in message
    assert "Value not in list" not in message


def test_compare_workflow_grids_checkpoints_by_step(comfy_server, object_info, trained):
    name = trained[0]
    prompt = wf.with_tiny_loader(wf.to_api(wf.load_workflow("compare_checkpoints"), object_info))
    wf.set_inputs(prompt, "HypernetworkXYGrid", x_values=f"{name}/*.pt", y_values="1, 2", steps=2,
                  width=SIZE, height=SIZE, filename_prefix=f"wf_grid_{name}")
    result = comfy_server.run(prompt)
    images = result.outputs[wf.nodes_of(prompt, "HypernetworkXYGrid")[0]]["images"]
    with Image.open(comfy_server.layout.output / images[0]["subfolder"] / images[0]["filename"]) as png:
        meta = json.loads(png.text["hypernet_grid"])
        assert png.width >= 2 * SIZE and png.height >= 2 * SIZE
    text = json.dumps(meta)
    first, second = text.find(f"{name}-{SAVE_EVERY}.pt"), text.find(f"{name}-{STEPS}.pt")
    assert 0 <= first < second, "checkpoint columns are ordered by training step"
