"""The frontend's workflow JSON (litegraph "nodes"/"links") -> the API prompt POST /prompt takes.

Used by the e2e tests and by scripts/demo.py. It mirrors what the pinned host's frontend does in
`app.graphToPrompt()`, with the node definitions from GET /object_info:

- `widgets_values` holds one value per widget input, in the order of the node's required then
  optional inputs, skipping link-only inputs (MODEL, CLIP, HN_DATASET, ...);
- the frontend adds widgets that are not inputs right after some of them: "control_after_generate"
  after INT inputs named seed / noise_seed (or with the `control_after_generate` option), plus a
  filter-list widget after such COMBO inputs, and an "upload" button after image-upload combos;
  their values are skipped;
- a widget converted to an input that has a link takes the link instead of its value;
- Note nodes and muted nodes are left out, Reroute nodes are followed to their source.
Standard library only.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable, Mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_WORKFLOWS = REPO_ROOT / "example_workflows"

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
SEED_NAMES = {"seed", "noise_seed"}
FRONTEND_ONLY_TYPES = {"Note", "PrimitiveNode", "Reroute"}
MODE_MUTED, MODE_BYPASSED = 2, 4

STOCK_LOADER = "CheckpointLoaderSimple"
TINY_LOADER = "HNTestTinyCheckpointLoader"


class WorkflowError(ValueError):
    """The workflow does not fit the server's node definitions; the message names node and input."""


def load_workflow(name_or_path: str | Path) -> dict:
    """A workflow from example_workflows/ by name ('train_hypernetwork') or any path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = EXAMPLE_WORKFLOWS / f"{path}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def is_widget(spec: list | tuple) -> bool:
    """True when the frontend makes a widget for this input spec (a combo list or a plain type)."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def extra_widgets_after(name: str, spec: list | tuple) -> int:
    """How many frontend-only widget values follow this input's value in `widgets_values`."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if kind == "INT" and (name in SEED_NAMES or options.get("control_after_generate")):
        return 1
    if isinstance(kind, list):
        extra = 2 if options.get("control_after_generate") else 0  # control + filter list
        return extra + (1 if options.get("image_upload") else 0)
    return 0


def widget_inputs(node_info: Mapping) -> list[tuple[str, list]]:
    """(name, spec) of every widget input, in the order the frontend creates their widgets."""
    inputs = node_info["input"]
    ordered = list(inputs.get("required", {}).items()) + list(inputs.get("optional", {}).items())
    return [(name, spec) for name, spec in ordered if is_widget(spec)]


def widget_values(node: Mapping, node_info: Mapping) -> dict[str, Any]:
    """{input name: value} from a UI node's `widgets_values`, control widgets skipped."""
    values = node.get("widgets_values") or []
    if isinstance(values, dict):  # some custom frontends save them by name
        return dict(values)
    out: dict[str, Any] = {}
    index = 0
    optional = node_info["input"].get("optional", {})
    for name, spec in widget_inputs(node_info):
        if index >= len(values) and name in optional:
            break  # saved before this optional input was added (last): the frontend keeps its default
        if index >= len(values):
            raise WorkflowError(f"node {node['id']} ({node['type']}): no value for widget input {name!r} "
                                f"(widgets_values has {len(values)} entries); re-save the workflow in the UI")
        out[name] = values[index]
        index += 1 + extra_widgets_after(name, spec)
    return out


def _links_by_id(workflow: Mapping) -> dict[int, list]:
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):  # newer frontends
            link = [link["id"], link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"],
                    link.get("type")]
        links[int(link[0])] = link
    return links


def _source(link_id: int, links: Mapping[int, list], nodes: Mapping[int, Mapping]) -> list | None:
    """[origin node id, output slot] of a link, following Reroute nodes; None when it leads nowhere."""
    seen = set()
    while link_id is not None and link_id not in seen:
        seen.add(link_id)
        link = links.get(int(link_id))
        if link is None:
            return None
        origin = nodes.get(int(link[1]))
        if origin is None:
            return None
        if origin["type"] != "Reroute":
            if origin.get("mode", 0) == MODE_MUTED:
                return None
            return [str(origin["id"]), int(link[2])]
        link_id = (origin.get("inputs") or [{}])[0].get("link")
    return None


def to_api(workflow: Mapping, object_info: Mapping) -> dict[str, dict]:
    """The API prompt for a UI workflow, checked against the server's node definitions."""
    nodes = {int(node["id"]): node for node in workflow["nodes"]}
    links = _links_by_id(workflow)
    prompt: dict[str, dict] = {}
    for node_id, node in nodes.items():
        kind = node["type"]
        if kind in FRONTEND_ONLY_TYPES or node.get("mode", 0) == MODE_MUTED:
            continue
        if node.get("mode", 0) == MODE_BYPASSED:
            raise WorkflowError(f"node {node_id} ({kind}) is bypassed; un-bypass or delete it before converting")
        if kind not in object_info:
            raise WorkflowError(f"node {node_id}: type {kind!r} is not installed on this server")
        inputs = widget_values(node, object_info[kind])
        for slot in node.get("inputs") or []:
            link_id = slot.get("link")
            if link_id is None:
                continue
            source = _source(link_id, links, nodes)
            if source is not None:
                inputs[slot["name"]] = source
        prompt[str(node_id)] = {"class_type": kind, "inputs": inputs}
    return prompt


def nodes_of(prompt: Mapping[str, dict], class_type: str) -> list[str]:
    return [node_id for node_id, node in prompt.items() if node["class_type"] == class_type]


def set_inputs(prompt: dict, class_type: str, **values) -> dict:
    """Set widget inputs on every node of `class_type` (raises when the workflow has none)."""
    found = nodes_of(prompt, class_type)
    if not found:
        raise WorkflowError(f"the workflow has no {class_type} node")
    for node_id in found:
        prompt[node_id]["inputs"].update(values)
    return prompt


def swap_checkpoint_loader(prompt: dict, replace: Callable[[dict], dict]) -> dict:
    """Replace every stock CheckpointLoaderSimple node by the node `replace(old node)` returns.

    Both give (MODEL, CLIP, VAE) in that order, so the links stay valid.
    """
    out = copy.deepcopy(prompt)
    for node_id in nodes_of(out, STOCK_LOADER):
        out[node_id] = replace(out[node_id])
    return out


def with_tiny_loader(prompt: dict, kind: str = "sd1", seed: int = 0) -> dict:
    """Tests and the default demo: the stock loader becomes the test-only tiny model builder."""
    return swap_checkpoint_loader(prompt, lambda _: {"class_type": TINY_LOADER,
                                                      "inputs": {"kind": kind, "seed": seed}})


def with_checkpoint(prompt: dict, ckpt_name: str) -> dict:
    """A real run: the stock loader reads `ckpt_name` from the checkpoints folder."""
    return set_inputs(copy.deepcopy(prompt), STOCK_LOADER, ckpt_name=ckpt_name)


# ------------------------------------------------------------------ the same edits on the UI workflow (browser tests)


def widget_index(node_info: Mapping, name: str) -> int:
    """Position of widget input `name` in a UI node's `widgets_values`."""
    index = 0
    for input_name, spec in widget_inputs(node_info):
        if input_name == name:
            return index
        index += 1 + extra_widgets_after(input_name, spec)
    raise WorkflowError(f"{node_info.get('name', '?')} has no widget input {name!r}")


def set_ui_widgets(workflow: dict, object_info: Mapping, class_type: str, **values) -> dict:
    """Set widget values on every UI node of `class_type`, in place; returns the workflow."""
    found = [node for node in workflow["nodes"] if node["type"] == class_type]
    if not found:
        raise WorkflowError(f"the workflow has no {class_type} node")
    for node in found:
        for name, value in values.items():
            node["widgets_values"][widget_index(object_info[class_type], name)] = value
    return workflow


def ui_with_tiny_loader(workflow: dict, kind: str = "sd1", seed: int = 0) -> dict:
    """A copy of a UI workflow whose stock checkpoint loaders are the test-only tiny model builder
    (same three outputs, so links stay valid); its seed control is 'fixed'."""
    out = copy.deepcopy(workflow)
    for node in out["nodes"]:
        if node["type"] == STOCK_LOADER:
            node["type"] = TINY_LOADER
            node["widgets_values"] = [kind, seed, "fixed"]
            node["properties"] = {"Node name for S&R": TINY_LOADER}
    return out
