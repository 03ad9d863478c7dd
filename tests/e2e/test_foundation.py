"""The pack inside the real host server: it loads cleanly, its nodes are described, tiny models sample."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.support.graphs import Graph, tiny_txt2img
from tests.support.pack_files import NODE_IDS


def test_pack_and_test_nodes_import_without_error(comfy_server):
    ours = ("comfyui-hypernetwork", "hn_test_nodes")
    failures = [line for line in comfy_server.log().splitlines()
                if ("IMPORT FAILED" in line or "Cannot import" in line) and any(name in line for name in ours)]
    assert not failures, failures
    info = comfy_server.get_json("/object_info/HNTestTinyCheckpointLoader")
    assert "HNTestTinyCheckpointLoader" in info


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_is_described_in_object_info(comfy_server, node_id):
    info = comfy_server.get_json(f"/object_info/{node_id}")[node_id]
    assert info["category"].startswith("hypernetwork/"), info["category"]
    assert info.get("description"), f"{node_id} has no DESCRIPTION"
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            options = spec[1] if len(spec) > 1 else {}
            assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_tiny_model_txt2img_through_the_server(comfy_server):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    ids = tiny_txt2img(graph, [loader, 0], [loader, 1], [loader, 2])
    save = graph.add("SaveImage", images=[ids["decode"], 0], filename_prefix="foundation")
    result = comfy_server.run(graph.to_api())
    image_info = result.outputs[save]["images"][0]
    path = comfy_server.layout.output / image_info.get("subfolder", "") / image_info["filename"]
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    assert pixels.shape == (64, 64, 3)
    assert np.isfinite(pixels).all()
    assert pixels.std() > 1.0, "decoded image is constant"


def test_unknown_node_type_is_refused_and_server_stays_up(comfy_server):
    from tests.support.server import PromptError

    with pytest.raises(PromptError):
        comfy_server.queue({"1": {"class_type": "NoSuchNodeAnywhere", "inputs": {}}})
    assert comfy_server.alive()
    assert comfy_server.get_json("/object_info/KSampler")
