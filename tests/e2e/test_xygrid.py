"""HypernetworkXYGrid through the real server: cells equal plain KSampler graphs, the grid is saved
and shown, checkpoint axes follow training steps, bad values are clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import save_hypernetwork
from hypernet.network.module import Hypernetwork
from tests.support.networks import loud_weights
from tests.support.graphs import Graph, tiny_txt2img
from tests.support.server import PromptError

SIZE = 32
STEPS = 2


def add_grid(graph: Graph, loader: str, **overrides) -> str:
    inputs = dict(model=[loader, 0], clip=[loader, 1], vae=[loader, 2], positive="a cat", negative="",
                  width=SIZE, height=SIZE, seed=1, steps=STEPS, cfg=7.0, sampler_name="euler", scheduler="normal",
                  clip_skip=1, x_type="none", x_values="", y_type="none", y_values="", filename_prefix="e2e_grid",
                  strength=1.0)
    inputs.update(overrides)
    return graph.add("HypernetworkXYGrid", **inputs)


def saved_pixels(server, image_info: dict) -> np.ndarray:
    path = server.layout.output / image_info.get("subfolder", "") / image_info["filename"]
    with Image.open(path) as png:
        return np.asarray(png.convert("RGB"))


def saved_images(server, result, node_id: str) -> list[np.ndarray]:
    return [saved_pixels(server, info) for info in result.outputs[node_id]["images"]]


def grid_file(server, result, grid_id: str) -> tuple[dict, dict, np.ndarray]:
    """(metadata JSON, all PNG text chunks, pixels) of the grid the node saved and shows."""
    images = result.outputs[grid_id]["images"]
    assert len(images) == 1 and images[0]["type"] == "output"
    path = server.layout.output / images[0]["subfolder"] / images[0]["filename"]
    with Image.open(path) as png:
        text = dict(png.text)
        pixels = np.asarray(png.convert("RGB"))
    return json.loads(text["hypernet_grid"]), text, pixels


def test_grid_cell_equals_plain_ksampler_and_grid_is_saved_and_shown(comfy_server):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    grid = add_grid(graph, loader, x_type="seed", x_values="3, 4", y_type="cfg", y_values="4, 6")
    cells_save = graph.add("SaveImage", images=[grid, 1], filename_prefix="e2e_cells")
    plain = tiny_txt2img(graph, [loader, 0], [loader, 1], [loader, 2], prompt="a cat", seed=4, steps=STEPS,
                         cfg=6.0, size=SIZE)
    plain_save = graph.add("SaveImage", images=[plain["decode"], 0], filename_prefix="e2e_plain")
    result = comfy_server.run(graph.to_api())

    cells = saved_images(comfy_server, result, cells_save)
    (reference,) = saved_images(comfy_server, result, plain_save)
    assert len(cells) == 4
    assert np.array_equal(cells[3], reference), "cell (seed 4, cfg 6) differs from the plain KSampler image"
    assert not np.array_equal(cells[0], reference)

    meta, text, pixels = grid_file(comfy_server, result, grid)
    assert meta["axes"][0]["labels"] == ["Seed: 3", "Seed: 4"] and meta["axes"][1]["labels"] == ["CFG: 4", "CFG: 6"]
    assert meta["settings"]["steps"] == STEPS and meta["settings"]["positive"] == "a cat"
    assert "HypernetworkXYGrid" in text["prompt"], "the prompt is embedded as SaveImage does"
    height, width = pixels.shape[:2]
    assert width > 2 * SIZE and height > 2 * SIZE, "label bands are drawn"
    assert np.array_equal(pixels[height - SIZE:, width - SIZE:], cells[3]), "bottom-right cell is the last cell"

    progress = [e["data"] for e in result.events if e.get("type") == "progress" and e["data"].get("node") == grid]
    assert progress, "the grid node reports progress"
    assert {p["max"] for p in progress} == {4 * STEPS}, "one bar over all cells"
    values = [p["value"] for p in progress]
    assert values == sorted(values) and values[-1] == 4 * STEPS


def write_checkpoints(folder, steps_by_name: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, step in steps_by_name.items():
        config = HypernetworkConfig(name="mynet", layer_structure=[1, 2, 1], activation_func="relu",
                                    sizes=[768, 32, 64], seed=step)
        network = loud_weights(Hypernetwork.create(config), step)  # every checkpoint changes the image
        network.step = step
        save_hypernetwork(network, folder / file_name)


def test_checkpoint_axis_in_training_step_order_and_strength_zero_is_unpatched(comfy_server):
    # mynet.pt is the final save of a run (step 60 stored inside); periodic copies carry the step in the name.
    write_checkpoints(comfy_server.layout.hypernetworks / "mynet",
                      {"mynet-100.pt": 100, "mynet-20.pt": 20, "mynet.pt": 60})
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    grid = add_grid(graph, loader, seed=5, x_type="strength", x_values="0, 1", y_type="hypernetwork",
                    y_values="mynet/*.pt", filename_prefix="e2e_ckpt")
    cells_save = graph.add("SaveImage", images=[grid, 1], filename_prefix="e2e_ckpt_cells")
    plain = tiny_txt2img(graph, [loader, 0], [loader, 1], [loader, 2], prompt="a cat", seed=5, steps=STEPS,
                         size=SIZE)
    plain_save = graph.add("SaveImage", images=[plain["decode"], 0], filename_prefix="e2e_ckpt_plain")
    applied = graph.add("ApplyHypernetwork", model=[loader, 0], hypernetwork_name="mynet/mynet-20.pt", strength=1.0)
    patched = tiny_txt2img(graph, [applied, 0], [loader, 1], [loader, 2], prompt="a cat", seed=5, steps=STEPS,
                           size=SIZE)
    patched_save = graph.add("SaveImage", images=[patched["decode"], 0], filename_prefix="e2e_ckpt_applied")
    result = comfy_server.run(graph.to_api())

    meta, _, _ = grid_file(comfy_server, result, grid)
    assert meta["axes"][1]["values"] == ["mynet/mynet-20.pt", "mynet/mynet.pt", "mynet/mynet-100.pt"]
    cells = saved_images(comfy_server, result, cells_save)
    (reference,) = saved_images(comfy_server, result, plain_save)
    (applied_reference,) = saved_images(comfy_server, result, patched_save)
    assert len(cells) == 6
    for row in range(3):
        assert np.array_equal(cells[2 * row], reference), f"strength 0 in row {row} is not the unpatched model"
    assert np.array_equal(cells[1], applied_reference), "mynet-20 at strength 1 differs from ApplyHypernetwork"
    strong = [cells[1], cells[3], cells[5]]
    assert all(not np.array_equal(c, reference) for c in strong)
    assert not np.array_equal(strong[0], strong[1]) and not np.array_equal(strong[1], strong[2])


@pytest.mark.parametrize("overrides,fragments", [
    (dict(x_type="steps", x_values="1, two"), ["X axis (steps)", "'two'"]),
    (dict(y_type="strength", y_values="0-1 [x]"), ["Y axis (strength)", "'0-1 [x]'"]),
])
def test_bad_value_is_a_clear_error_and_the_server_stays_up(comfy_server, overrides, fragments):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    add_grid(graph, loader, **overrides)
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    message = str(caught.value)
    assert "HypernetworkXYGrid" in message
    for fragment in fragments:
        assert fragment in message, message
    assert comfy_server.alive()
    assert comfy_server.get_json("/object_info/HypernetworkXYGrid")
