"""Values as an API prompt sends them, through the real server: types and ranges are checked before
the host converts them ("false" is not True), options are validated wherever they arrive (old-layout
inputs, the options socket, settings JSON), and a partial settings_json changes only what it names."""
from __future__ import annotations

import json
import math
import uuid

import pytest

from hypernet.network.config import HypernetworkConfig
from hypernet.network.fileio import save_hypernetwork
from hypernet.network.module import Hypernetwork
from tests.support.datasets import make_shapes_dataset
from tests.support.graphs import Graph
from tests.support.server import PromptError

PACK_CATEGORY = "hypernetwork"


@pytest.fixture(scope="module")
def dataset_folder(comfy_server):
    make_shapes_dataset(comfy_server.layout.input / "inputs_shapes", count=2, size=64)
    return "inputs_shapes"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def train_graph(dataset: str, name: str, *, options: dict | None = None, **train_inputs) -> tuple[dict, str]:
    """Tiny model + Load Dataset + Create (not saved) -> Train; `options`: a raw dict on the socket."""
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    load = graph.add("HypernetworkLoadDataset", directory=dataset, recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=1)
    create = graph.add("CreateHypernetwork", name=name, layer_structure="1, 2, 1", activation_func="relu",
                       weight_initialization="Normal", add_layer_norm=False, use_dropout=False,
                       dropout_structure="0, 0, 0", activate_output=False, last_layer_dropout=False,
                       sizes="32, 64", seed=0, save=False, overwrite=False)
    inputs = dict(model=[loader, 0], clip=[loader, 1], vae=[loader, 2], dataset=[load, 0], hypernetwork=[create, 0],
                  hypernetwork_name="none", template="[filewords]", learning_rate="5e-3", steps=1, batch_size=1,
                  grad_accumulation_steps=1, seed=0, save_every=0, resume=True)
    if options is not None:
        raw = graph.add("HNTestRawTrainOptions", options_json=json.dumps(options))
        inputs["options"] = [raw, 0]
    inputs.update(train_inputs)
    return graph.to_api(), graph.add("TrainHypernetwork", **inputs)


def refused(comfy_server, graph: dict) -> dict:
    """The server's 400 answer: node_errors by node id."""
    with pytest.raises(PromptError) as error:
        comfy_server.queue(graph)
    assert "node_errors" in error.value.payload, error.value.payload
    return error.value.payload["node_errors"]


def messages(node_errors: dict, node: str) -> str:
    return " | ".join(e["message"] for e in node_errors[node]["errors"])


# ---------------------------------------------------------------- booleans are booleans


def test_overwrite_given_as_text_false_is_refused_and_the_users_file_stays(comfy_server, dataset_folder):
    layout = comfy_server.layout
    name = unique("keep")
    precious = layout.hypernetworks / f"{name}.pt"
    save_hypernetwork(Hypernetwork.create(HypernetworkConfig(name="theirs", sizes=[32, 64])), precious)
    original = precious.read_bytes()
    graph, train = train_graph(dataset_folder, name, overwrite="false")
    errors = refused(comfy_server, graph)
    assert "overwrite: 'false' is invalid; must be true or false" in messages(errors, train)
    assert precious.read_bytes() == original
    assert not (layout.hypernetworks / name).exists(), "refused before anything ran"


def pack_widget_inputs(object_info: dict):
    """(node id, input name, type, extras) of every widget input of every pack node."""
    for node_id, info in sorted(object_info.items()):
        if not str(info.get("category", "")).startswith(PACK_CATEGORY):
            continue
        for group in ("required", "optional"):
            for name, spec in info["input"].get(group, {}).items():
                if spec[0] in ("BOOLEAN", "INT", "FLOAT"):
                    yield node_id, name, spec[0], spec[1] if len(spec) > 1 else {}


def wrong_values(kind: str, extras: dict) -> list:
    if kind == "BOOLEAN":
        return ["false", 0]
    if kind == "INT":
        too_big = extras.get("max", 2**64) + 1
        return ["7", 1.5, True, too_big]
    return ["0.5", "nan", True, extras.get("max", 1e300) * 10 + 1]


def test_every_boolean_and_number_input_of_every_pack_node_is_type_checked(comfy_server):
    """Each wrong value alone in a prompt: 400, the node's error names the input and what is allowed."""
    checked = set()
    for node_id, name, kind, extras in pack_widget_inputs(comfy_server.object_info()):
        for value in wrong_values(kind, extras):
            errors = refused(comfy_server, {"1": {"class_type": node_id, "inputs": {name: value}}})
            text = messages(errors, "1")
            assert text.startswith(f"{name}: ") and "invalid" in text, (node_id, name, value, text)
            assert ("true or false" if kind == "BOOLEAN" else "number") in text, text
        checked.add(node_id)
    assert {"TrainHypernetwork", "HypernetworkTrainingOptions", "HypernetworkPreviewOptions", "CreateHypernetwork",
            "ApplyHypernetwork", "HypernetworkLoadDataset"} <= checked


# ---------------------------------------------------------------- ranges wherever options arrive


@pytest.mark.parametrize("field,value,allowed", [
    ("preview_steps", 0, "from 1 to 200"),
    ("preview_steps", 10**9, "from 1 to 200"),
    ("preview_cfg", "nan", "finite number from 0 to 100"),
    ("preview_cfg", math.nan, "finite number from 0 to 100"),
    ("preview_sampler", "../../x", "listed choices, e.g. euler"),
    ("rollback", "false", "true or false"),
    ("loss_type", "mse; rm -rf", "use one of mse, l1, huber"),
])
def test_old_layout_inputs_on_train_are_checked_against_the_declared_ranges(comfy_server, dataset_folder, field,
                                                                              value, allowed):
    graph, train = train_graph(dataset_folder, unique("legacy"), **{field: value})
    text = messages(refused(comfy_server, graph), train)
    assert text.startswith(f"{field}: ") and allowed in text, text


@pytest.mark.parametrize("field,value,allowed", [
    ("preview_sampler", "../../x", "sampler names"),
    ("preview_cfg", math.nan, "finite number from 0 to 100"),
    ("preview_steps", 0, "from 1 to 200"),
    ("preview_steps", 10**9, "from 1 to 200"),
    ("overwrite", True, "unknown settings"),
    ("adamw_beta1", "0.9", "finite number from 0 to 0.9999"),
])
def test_options_arriving_through_the_socket_are_validated_by_the_pack(comfy_server, dataset_folder, field, value,
                                                                        allowed):
    name = unique("socket")
    graph, _ = train_graph(dataset_folder, name, options={field: value})
    with pytest.raises(PromptError) as error:
        comfy_server.run(graph, timeout=300)
    message = error.value.payload["exception_message"]
    assert field in message and allowed in message, message
    assert not (comfy_server.layout.hypernetworks / name).exists(), "refused before the run folder was made"


# ---------------------------------------------------------------- settings JSON merges


def settings_file(comfy_server, name: str) -> dict:
    return json.loads((comfy_server.layout.hypernetworks / name / "training_settings.json").read_text())["config"]


def test_a_partial_settings_json_changes_only_the_keys_it_names(comfy_server, dataset_folder):
    name = unique("partial")
    graph, train = train_graph(dataset_folder, name, steps=1, learning_rate="1e-3", settings_json='{"batch_size": 2}')
    report = comfy_server.run(graph, timeout=300).outputs[train]["text"][0]
    assert "precision: fp32 (no autocast) (training_dtype auto)" in report, "auto is fp32 on the CPU, and said"
    config = settings_file(comfy_server, name)
    assert (config["batch_size"], config["steps"], config["learning_rate"]) == (2, 1, "1e-3")
    assert (comfy_server.layout.hypernetworks / f"{name}.pt").is_file()

    # the run's own full settings file works as a full preset: its steps win over the node's
    again = unique("full")
    full = json.dumps({"config": dict(config, tag_dropout=0.25)})
    graph, _ = train_graph(dataset_folder, again, steps=3, settings_json=full)
    comfy_server.run(graph, timeout=300)
    assert settings_file(comfy_server, again) == dict(config, tag_dropout=0.25)


@pytest.mark.parametrize("preset,named", [('{"batch_size": 100000}', "settings_json: batch_size: 100000"),
                                          ('{"shuffle_tags": "false"}', "settings_json: shuffle_tags: 'false'"),
                                          ('{"stepz": 3}', "unknown keys ['stepz']")])
def test_a_settings_json_out_of_range_is_refused_before_training(comfy_server, dataset_folder, preset, named):
    name = unique("badpreset")
    graph, _ = train_graph(dataset_folder, name, settings_json=preset)
    with pytest.raises(PromptError) as error:
        comfy_server.run(graph, timeout=300)
    assert named in error.value.payload["exception_message"]
    assert not (comfy_server.layout.hypernetworks / name).exists()


