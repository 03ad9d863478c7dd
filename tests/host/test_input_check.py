"""The pack's check of raw API-prompt values (nodes/input_check.py), on node classes of its own."""
from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def check(comfy_host):
    return importlib.import_module(f"{comfy_host.pack.__name__}.nodes.input_check")


def test_a_combo_the_node_validates_itself_is_left_to_it(check):
    """Like the host: a combo named by the node's VALIDATE_INPUTS (e.g. values renamed since an
    earlier version) is left to it; the node's other inputs are still checked."""
    class Node:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"mode": (["new_first", "existing_first"],), "flag": ("BOOLEAN", {"default": False})}}

        @classmethod
        def VALIDATE_INPUTS(cls, mode=None):
            return mode in ("new_first", "existing_first", "prepend", "append")

    assert check.input_errors(Node, {"mode": "prepend", "flag": False}) == []
    assert [name for name, _ in check.input_errors(Node, {"mode": "prepend", "flag": "no"})] == ["flag"]
    del Node.VALIDATE_INPUTS
    assert [name for name, _ in check.input_errors(Node, {"mode": "prepend"})] == ["mode"]


def test_host_style_node_errors_name_the_node_and_input(check):
    class Node:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"steps": ("INT", {"min": 1, "max": 10})}, "optional": {"on": ("BOOLEAN",)}}

    prompt = {"4": {"class_type": "Mine", "inputs": {"steps": 11, "on": "true"}},
              "5": {"class_type": "NotOurs", "inputs": {"steps": "x"}},
              "6": {"class_type": "Mine", "inputs": {"steps": ["4", 0], "on": True}}}
    errors = check.prompt_errors(prompt, {"Mine": Node})
    assert list(errors) == ["4"] and errors["4"]["class_type"] == "Mine"
    found = {e["extra_info"]["input_name"]: e["message"] for e in errors["4"]["errors"]}
    assert found == {"steps": "steps: 11 is invalid; must be a whole number from 1 to 10",
                     "on": "on: 'true' is invalid; must be true or false (a JSON boolean, not text)"}
