"""Every API prompt's values for the pack's nodes, type-checked before the host converts them.

The host converts widget values in place while validating a prompt: current ComfyUI turns the
string "false" given to a BOOLEAN into True, both hosts turn "nan" into NaN for a FLOAT and "7"
into 7 for an INT, and the 2024 host checks no optional input at all. So a node cannot tell what
was sent; this check (installed by `nodes.host.routes.add_prompt_check`) sees the raw prompt and refuses a
value of the wrong type or out of its declared range with a 400 naming the node and input, as
the host refuses its own validation failures. Old-layout inputs a node still reads from the
prompt (`LEGACY_INPUT_TYPES`, Train's options) are checked the same way.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from ..hypernet.train.settings import check_value, setting_from_input
from .host import routes


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _declared_inputs(node_class: type) -> dict[str, Any]:
    declared = node_class.INPUT_TYPES()
    inputs = {**declared.get("required", {}), **declared.get("optional", {})}
    legacy = getattr(node_class, "LEGACY_INPUT_TYPES", None)
    if legacy is not None:
        inputs = {**legacy(), **inputs}
    return inputs


def _validated_by_node(node_class: type) -> set[str]:
    """Inputs the node's own VALIDATE_INPUTS checks (e.g. a combo that still accepts renamed values)."""
    validate = getattr(node_class, "VALIDATE_INPUTS", None)
    return set(inspect.getfullargspec(validate).args) if validate is not None else set()


def input_errors(node_class: type, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(input name, message) for each raw value that does not fit its declared input."""
    declared = _declared_inputs(node_class)
    own_check = _validated_by_node(node_class)
    errors = []
    for name, value in inputs.items():
        setting = setting_from_input(name, declared.get(name))
        if setting is None or _is_link(value):
            continue  # a socket, an input the node does not take, or a link (the host checks those)
        if setting.kind == "COMBO" and name in own_check:
            continue  # its VALIDATE_INPUTS decides which values it takes, as the host lets it
        if isinstance(value, dict) and "__value__" in value:
            continue  # current ComfyUI's wrapper for list-valued widgets
        try:
            check_value(setting, value)
        except ValueError as exc:
            errors.append((name, str(exc)))
    return errors


def prompt_errors(prompt: Mapping[str, Any], classes: Mapping[str, type]) -> dict[str, dict]:
    """Host-style `node_errors` for the pack's nodes in an API prompt (empty when all is well)."""
    node_errors: dict[str, dict] = {}
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or node.get("class_type") not in classes:
            continue
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        errors = input_errors(classes[node["class_type"]], inputs)
        if errors:
            node_errors[str(node_id)] = {
                "errors": [{"type": "invalid_input_value", "message": message, "details": name,
                            "extra_info": {"input_name": name, "received_value": repr(inputs[name])[:200]}}
                           for name, message in errors],
                "dependent_outputs": [], "class_type": node["class_type"]}
    return node_errors


def register(classes: Mapping[str, type]) -> bool:
    """Check every queued prompt's values for `classes` (the pack's nodes) on the running server."""
    return routes.add_prompt_check(lambda prompt: prompt_errors(prompt, classes))
