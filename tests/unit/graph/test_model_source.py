"""The MODEL-loader trace (`hypernet/graph/model_source.py`) over hand-written API prompts."""
from __future__ import annotations

import pytest

from hypernet.graph.model_source import LoaderFile, link_source, trace_model_loader


def prompt_through(*middle: str, loader: dict | None = None) -> dict:
    """Loader "1" -> each of `middle` (class types) in turn -> TrainHypernetwork "9"."""
    prompt = {"1": loader or {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/base.safetensors"}}}
    previous = "1"
    for index, class_type in enumerate(middle, start=2):
        prompt[str(index)] = {"class_type": class_type, "inputs": {"model": [previous, 0], "strength": 1.0}}
        previous = str(index)
    prompt["9"] = {"class_type": "TrainHypernetwork", "inputs": {"model": [previous, 0], "steps": 10}}
    return prompt


def test_a_direct_checkpoint_loader_is_found():
    found = trace_model_loader(prompt_through(), "9")
    assert found == LoaderFile("CheckpointLoaderSimple", "ckpt_name", "sd15/base.safetensors")
    assert found.folder_kinds == ("checkpoints",)


def test_model_passing_nodes_are_followed_upstream():
    found = trace_model_loader(prompt_through("LoraLoader", "ApplyHypernetwork", "ModelSamplingDiscrete"), 9)
    assert found == ("CheckpointLoaderSimple", "ckpt_name", "sd15/base.safetensors")


def test_a_diffusion_model_loader_is_looked_up_in_its_folders():
    loader = {"class_type": "UNETLoader", "inputs": {"unet_name": "flux.safetensors", "weight_dtype": "default"}}
    found = trace_model_loader(prompt_through("ApplyHypernetwork", loader=loader), "9")
    assert (found.loader, found.file_name, found.folder_kinds) == ("UNETLoader", "flux.safetensors",
                                                                   ("diffusion_models", "unet"))


def test_another_input_name_can_be_traced():
    prompt = prompt_through()
    prompt["9"]["inputs"] = {"base": ["1", 0]}
    assert trace_model_loader(prompt, "9", "base").file_name == "sd15/base.safetensors"
    assert trace_model_loader(prompt, "9") == "the model input of node 9 is not connected"


@pytest.mark.parametrize("prompt, node_id, why", [
    (None, "9", "workflow graph is not available"),
    ("not a dict", "9", "workflow graph is not available"),
    ({}, None, "workflow graph is not available"),
    ({}, "9", "node 9 is not in the workflow graph"),
    ({"9": {"class_type": "X", "inputs": "model"}}, "9", "node 9 is not in the workflow graph"),
    ({"9": {"class_type": "X", "inputs": {"model": "ckpt.safetensors"}}}, "9", "model input of node 9 is not connected"),
    ({"9": {"class_type": "X", "inputs": {"model": ["4", "0"]}}}, "9", "model input of node 9 is not connected"),
    ({"9": {"class_type": "X", "inputs": {"model": ["4", 0]}}}, "9", "node 4 is not in the workflow graph"),
    ({"9": {"class_type": "X", "inputs": {"model": ["4", 0]}}, "4": {"class_type": "ModelFromNowhere", "inputs": {}}},
     "9", "node 4 (ModelFromNowhere), which is not a checkpoint loader"),
])
def test_why_the_loader_cannot_be_known(prompt, node_id, why):
    result = trace_model_loader(prompt, node_id)
    assert isinstance(result, str) and why in result


def test_a_loop_of_model_links_ends_the_trace():
    prompt = {"9": {"class_type": "T", "inputs": {"model": ["2", 0]}},
              "2": {"class_type": "A", "inputs": {"model": ["3", 0]}},
              "3": {"class_type": "B", "inputs": {"model": ["2", 0]}}}
    assert trace_model_loader(prompt, "9") == "the MODEL links form a loop"


def test_a_file_input_that_is_itself_linked_is_not_a_file_name():
    loader = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ["7", 0]}}
    result = trace_model_loader(prompt_through(loader=loader), "9")
    assert isinstance(result, str) and "not a checkpoint loader" in result


@pytest.mark.parametrize("value, source", [
    (["4", 0], "4"), ((12, 1), "12"), (["4", "0"], None), (["4"], None), ("4", None), (None, None), (["a", 0, 1], None),
])
def test_link_source(value, source):
    assert link_source(value) == source
