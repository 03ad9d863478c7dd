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

from hypernet.train.schedule import parse_schedule
from tests.support import fake_tagger
from tests.support import workflows as wf
from tests.support.datasets import make_shapes_dataset
from tests.support.server import PromptError

WORKFLOW_NAMES = ["train_hypernetwork", "apply_hypernetwork", "compare_checkpoints"]
STEPS = 8
SAVE_EVERY = 4
SIZE = 64
TAGGER = "fake"
EXAMPLE_NAME = "my_style"  # Create Hypernetwork's name in train_hypernetwork.json, used by the other two


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
    thumbnail = wf.example_path(name, ".png")
    assert thumbnail.is_file(), f"{thumbnail.name} is missing"
    assert thumbnail.stat().st_size < 200_000
    with Image.open(thumbnail) as png:
        # a close-up that reads at card size: wide enough, at most 4:3 tall, not a sliver
        assert png.format == "PNG" and png.width >= 480, png.size
        assert 0.5 <= png.height / png.width <= 0.76, png.size
    # the new frontend's template browser (1.2x) asks for <name>.jpg, the old one for .png
    jpeg = wf.example_path(name, ".jpg")
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
    """The shipped x_values with the example's name replaced by the run's, as the note says."""
    name = trained[0]
    prompt = wf.with_tiny_loader(wf.to_api(wf.load_workflow("compare_checkpoints"), object_info))
    grid_id = wf.nodes_of(prompt, "HypernetworkXYGrid")[0]
    x_values = prompt[grid_id]["inputs"]["x_values"].replace(EXAMPLE_NAME, name)
    wf.set_inputs(prompt, "HypernetworkXYGrid", x_values=x_values, y_values="1, 2", steps=2,
                  width=SIZE, height=SIZE, filename_prefix=f"wf_grid_{name}")
    result = comfy_server.run(prompt)
    images = result.outputs[grid_id]["images"]
    with Image.open(comfy_server.layout.output / images[0]["subfolder"] / images[0]["filename"]) as png:
        meta = json.loads(png.text["hypernet_grid"])
        assert png.width >= 2 * SIZE and png.height >= 2 * SIZE
    text = json.dumps(meta)
    first, second = text.find(f"{name}-{SAVE_EVERY}.pt"), text.find(f"{name}-{STEPS}.pt")
    assert 0 <= first < second, "checkpoint columns are ordered by training step"
    x_axis = next(axis for axis in meta["axes"] if axis["name"] == "X") if "axes" in meta else meta["x"]
    assert x_axis["labels"] == ["none"] + [f"step {s}" for s in range(SAVE_EVERY, STEPS + 1, SAVE_EVERY)] + [
        f"step {STEPS} (final)"], "a no-network column, the checkpoints by step and the final file"


# ------------------------------------------------------------------ the example follows the guide


def shipped_inputs(object_info, workflow: str, class_type: str) -> dict:
    prompt = wf.to_api(wf.load_workflow(workflow), object_info)
    return prompt[wf.nodes_of(prompt, class_type)[0]]["inputs"]


def test_train_example_uses_the_guides_settings(object_info):
    """The A1111 hypernetwork guides' advice (issue 23): latents not sampled 'once', a schedule that
    starts at 5e-6 and never rises, >= 10,000 steps at 5e-6, tag shuffle with a small dropout,
    checkpoints and previews every 500 steps, mixed precision on a GPU, captions kept."""
    train = shipped_inputs(object_info, "train_hypernetwork", "TrainHypernetwork")
    assert train["latent_sampling"] in ("deterministic", "random")
    schedule = parse_schedule(train["learning_rate"], train["steps"])
    rates = [item.rate for item in schedule.items]
    assert rates[0] == 5e-6 and rates == sorted(rates, reverse=True), train["learning_rate"]
    assert schedule.items[0].end_step >= 10_000 and schedule.end_step == train["steps"]
    assert train["shuffle_tags"] is True and 0 < train["tag_dropout"] <= 0.2
    assert train["save_every"] == 500
    assert shipped_inputs(object_info, "train_hypernetwork", "HypernetworkPreviewOptions")["preview_every"] == 500
    options = shipped_inputs(object_info, "train_hypernetwork", "HypernetworkTrainingOptions")
    dtype_choices = object_info["HypernetworkTrainingOptions"]["input"]["required"]["training_dtype"][0]
    # 'auto' (fp16/bf16 autocast on a GPU, fp32 on the CPU) arrives with the settings declaration
    assert options["training_dtype"] == ("auto" if "auto" in dtype_choices else "fp32")
    tagger = shipped_inputs(object_info, "train_hypernetwork", "HypernetworkWD14Tag")
    assert tagger["write_captions"] == "off" and tagger["keep_captions"] is True, "the user's captions stay"
    assert shipped_inputs(object_info, "train_hypernetwork", "CreateHypernetwork")["name"] == EXAMPLE_NAME


def test_apply_and_compare_examples_use_the_train_examples_name(object_info):
    apply = shipped_inputs(object_info, "apply_hypernetwork", "ApplyHypernetwork")
    assert apply["hypernetwork_name"] == f"{EXAMPLE_NAME}.pt"
    grid = shipped_inputs(object_info, "compare_checkpoints", "HypernetworkXYGrid")
    assert grid["x_type"] == "hypernetwork"
    assert [v.strip() for v in grid["x_values"].split(",")] == ["none", f"{EXAMPLE_NAME}/*.pt", f"{EXAMPLE_NAME}.pt"]
    for workflow in ("apply_hypernetwork", "compare_checkpoints"):
        note = next(n for n in wf.load_workflow(workflow)["nodes"] if n["type"] == "Note")["widgets_values"][0]
        assert "Train it first" in note and f"instead of {EXAMPLE_NAME}" in note, workflow
