"""nodes/host/loaders.py: the model file a loader node's inputs name (headless runs, run-file export)."""
from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def loaders(comfy_host):
    return importlib.import_module(f"{comfy_host.pack.__name__}.nodes.host.loaders")


def test_a_loader_without_a_file_input_names_no_file(loaders):
    assert loaders.loader_model_file({"seed": 3}) is None


def test_a_missing_checkpoint_is_refused_naming_the_input_and_folder(loaders):
    with pytest.raises(FileNotFoundError, match=r"ckpt_name .*not_here\.safetensors.*checkpoints"):
        loaders.loader_model_file({"ckpt_name": "not_here.safetensors"})


def test_a_name_escaping_the_model_folders_is_refused(loaders):
    with pytest.raises(ValueError, match="checkpoints"):
        loaders.loader_model_file({"ckpt_name": "../../secret.safetensors"})
