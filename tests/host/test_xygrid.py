"""HypernetworkXYGrid in the real host, in-process, on the tiny SD1 model.

Every cell is compared bitwise with the image the host's own stock nodes give for the same
settings (CLIPSetLastLayer -> CLIPTextEncode -> EmptyLatentImage -> KSampler -> VAEDecode).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from PIL import Image

from tests.support.networks import loud_weights

SIZE = 32


@pytest.fixture(scope="module")
def tiny(comfy_host):
    return comfy_host.tiny.build_tiny("sd1", 0)


@pytest.fixture()
def output_dir(comfy_host):
    path = Path(comfy_host.folder_paths.get_output_directory())
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_grid(comfy_host, tiny, **overrides):
    """Run the node as the host would (inference mode); returns (ui, grid, cells)."""
    model, clip, vae = tiny
    inputs = dict(model=model, clip=clip, vae=vae, positive="a photo of a cat", negative="blurry", width=SIZE,
                  height=SIZE, seed=1, steps=1, cfg=5.0, sampler_name="euler", scheduler="normal", clip_skip=1,
                  x_type="none", x_values="", y_type="none", y_values="", filename_prefix="host_grid")
    inputs.update(overrides)
    node = comfy_host.pack.nodes.xygrid.HypernetworkXYGrid()
    with torch.inference_mode():
        out = node.run(**inputs)
    grid, cells = out["result"]
    return out["ui"], grid, cells


def plain(comfy_host, tiny, *, positive="a photo of a cat", negative="blurry", seed=1, steps=1, cfg=5.0,
          sampler_name="euler", scheduler="normal", clip_skip=1, model=None):
    """The image a plain stock graph gives."""
    nodes = comfy_host.nodes
    base_model, clip, vae = tiny
    with torch.inference_mode():
        if clip_skip > 1:
            clip = nodes.CLIPSetLastLayer().set_last_layer(clip, -clip_skip)[0]
        pos = nodes.CLIPTextEncode().encode(clip, positive)[0]
        neg = nodes.CLIPTextEncode().encode(clip, negative)[0]
        latent = nodes.EmptyLatentImage().generate(SIZE, SIZE, 1)[0]
        samples = nodes.KSampler().sample(model or base_model, seed, steps, cfg, sampler_name, scheduler,
                                          pos, neg, latent)[0]
        return nodes.VAEDecode().decode(vae, samples)[0]


def grid_metadata(output_dir, ui):
    image = ui["images"][0]
    assert image["type"] == "output"
    path = output_dir / image["subfolder"] / image["filename"]
    with Image.open(path) as png:
        return json.loads(png.text["hypernet_grid"]), np.asarray(png.convert("RGB"))


def to_uint8(image):
    return np.clip(image.cpu().numpy() * 255.0, 0, 255).astype(np.uint8)


def patch_counts(model):
    return {k: len(v) for k, v in model.model_options.get("transformer_options", {}).get("patches", {}).items()}


# ------------------------------------------------------------------ layout


@pytest.mark.parametrize("cols,rows", [(1, 1), (3, 1), (1, 3), (3, 4)])
def test_grid_layout_cells_and_header_bands(comfy_host, tiny, output_dir, cols, rows):
    x = dict(x_type="seed", x_values=", ".join(str(s) for s in range(1, cols + 1))) if cols > 1 else {}
    y = dict(y_type="cfg", y_values=", ".join(str(c) for c in (1.5, 3, 4.5, 6)[:rows])) if rows > 1 else {}
    ui, grid, cells = run_grid(comfy_host, tiny, **x, **y)
    assert cells.shape == (cols * rows, SIZE, SIZE, 3)
    pixels = to_uint8(grid[0])
    height, width = pixels.shape[:2]
    left, top = width - cols * SIZE, height - rows * SIZE
    assert (left > 0) == (rows > 1), "row label band only when Y has values"
    assert (top > 0) == (cols > 1), "column header band only when X has values"
    for index in range(cols * rows):
        r, c = divmod(index, cols)
        region = pixels[top + r * SIZE: top + (r + 1) * SIZE, left + c * SIZE: left + (c + 1) * SIZE]
        assert np.array_equal(region, to_uint8(cells[index])), f"cell {index} is not pasted unchanged"
    if cols > 1:
        band = pixels[:top, left:]
        assert (band == 255).mean() > 0.5, "header band background is white"
        assert (band.max(axis=2) < 128).sum() > 20, "column labels are drawn"
        for c in range(cols):  # every column has its own label over it
            assert (band[:, c * SIZE:(c + 1) * SIZE].max(axis=2) < 128).any(), f"column {c} has no label"
    if rows > 1:
        band = pixels[top:, :left]
        assert (band.max(axis=2) < 128).sum() > 20, "row labels are drawn"
        for r in range(rows):
            assert (band[r * SIZE:(r + 1) * SIZE].max(axis=2) < 128).any(), f"row {r} has no label"
    if cols == rows == 1:
        assert np.array_equal(pixels, to_uint8(cells[0])), "a 1x1 grid without axes is the cell itself"
    meta, saved = grid_metadata(output_dir, ui)
    assert np.array_equal(saved, pixels), "the saved PNG is the grid output"
    assert meta["settings"]["columns"] == cols and meta["settings"]["rows"] == rows


# ------------------------------------------------------------------ every cell is a plain KSampler image


def assert_cells_match(comfy_host, tiny, cells, expected_settings):
    for index, settings in enumerate(expected_settings):
        reference = plain(comfy_host, tiny, **settings)
        assert torch.equal(cells[index:index + 1], reference), f"cell {index} ({settings}) differs from plain"


def test_seed_and_prompt_sr_cells_equal_plain_graph_and_random_seed_is_shown(comfy_host, tiny, output_dir):
    ui, _, cells = run_grid(comfy_host, tiny, x_type="seed", x_values="5, -1", y_type="prompt_sr",
                           y_values="cat, dog", negative="cat ears")
    meta, _ = grid_metadata(output_dir, ui)
    x_axis = meta["axes"][0]
    drawn = x_axis["values"][1]
    assert drawn != -1 and 0 <= drawn < 2**32, "-1 is resolved to a real seed"
    assert x_axis["labels"] == ["Seed: 5", f"Seed: {drawn}"]
    expected = [dict(seed=s, positive=f"a photo of a {animal}", negative=f"{animal} ears")
                for animal in ("cat", "dog") for s in (5, drawn)]
    assert_cells_match(comfy_host, tiny, cells, expected)
    assert not torch.equal(cells[0], cells[1]) and not torch.equal(cells[0], cells[2])


def test_sampler_and_clip_skip_cells_equal_plain_graph(comfy_host, tiny):
    _, _, cells = run_grid(comfy_host, tiny, steps=2, x_type="sampler", x_values="euler, heun",
                           y_type="clip_skip", y_values="1, 2")
    expected = [dict(steps=2, sampler_name=s, clip_skip=k) for k in (1, 2) for s in ("euler", "heun")]
    assert_cells_match(comfy_host, tiny, cells, expected)
    assert not torch.equal(cells[0], cells[2]), "clip skip 2 changes the image"


def test_cfg_and_scheduler_cells_equal_plain_graph(comfy_host, tiny):
    _, _, cells = run_grid(comfy_host, tiny, steps=3, x_type="cfg", x_values="1.5-6 [2]", y_type="scheduler",
                           y_values="normal, Karras")
    expected = [dict(steps=3, cfg=c, scheduler=s) for s in ("normal", "karras") for c in (1.5, 6.0)]
    assert_cells_match(comfy_host, tiny, cells, expected)


def test_prompt_sr_on_both_axes_replaces_both(comfy_host, tiny):
    _, _, cells = run_grid(comfy_host, tiny, x_type="prompt_sr", x_values="photo, drawing",
                           y_type="prompt_sr", y_values="cat, dog")
    expected = [dict(positive=f"a {kind} of a {animal}") for animal in ("cat", "dog") for kind in ("photo", "drawing")]
    assert_cells_match(comfy_host, tiny, cells, expected)


# ------------------------------------------------------------------ hypernetworks


def make_network(comfy_host, name, seed=0):
    hn = comfy_host.pack.hypernet
    config = hn.network.hypernetwork_config.HypernetworkConfig(name=name, layer_structure=[1, 2, 1], activation_func="relu",
                                          sizes=[768, 32, 64], seed=seed)
    network = hn.network.module.Hypernetwork.create(config)
    loud_weights(network, seed + 7)
    return network


def test_strength_axis_on_connected_network_and_no_input_mutation(comfy_host, tiny):
    model = tiny[0]
    network = make_network(comfy_host, "xy_connected")
    before = patch_counts(model)
    _, _, cells = run_grid(comfy_host, tiny, hypernetwork=network, strength=0.3, x_type="strength",
                           x_values="0, 1", y_type="seed", y_values="2")
    assert patch_counts(model) == before, "the grid must not patch the incoming model"
    assert torch.equal(cells[0:1], plain(comfy_host, tiny, seed=2)), "strength 0 equals the unpatched model"
    patched = comfy_host.pack.nodes.apply.apply_to_model(model, network, 1.0)
    assert torch.equal(cells[1:2], plain(comfy_host, tiny, seed=2, model=patched))
    assert not torch.equal(cells[0], cells[1])
    # Without an axis the connected network applies to every cell at the node's strength.
    _, _, single = run_grid(comfy_host, tiny, hypernetwork=network, strength=0.3, seed=2)
    patched = comfy_host.pack.nodes.apply.apply_to_model(model, network, 0.3)
    assert torch.equal(single, plain(comfy_host, tiny, seed=2, model=patched))


def test_hypernetwork_axis_orders_files_by_stored_step(comfy_host, tiny, output_dir):
    folder = comfy_host.models_dir / "hypernetworks" / "xyorder"
    folder.mkdir(exist_ok=True)
    hn = comfy_host.pack.hypernet
    for file_name, step in (("run-300.pt", 300), ("run-40.pt", 40), ("run.pt", 120)):
        network = make_network(comfy_host, "run", seed=step)
        network.step = step
        hn.network.fileio.save_hypernetwork(network, folder / file_name)
    connected = make_network(comfy_host, "ignored_by_axis", seed=3)
    ui, _, cells = run_grid(comfy_host, tiny, hypernetwork=connected, x_type="hypernetwork",
                            x_values="none, xyorder/*.pt")
    meta, _ = grid_metadata(output_dir, ui)
    assert meta["axes"][0]["values"] == [None, "xyorder/run-40.pt", "xyorder/run.pt", "xyorder/run-300.pt"]
    assert meta["axes"][0]["labels"] == ["none", "step 40", "step 120", "step 300"]
    assert meta["axes"][0]["title"] == ("Hypernetwork: step 40 = xyorder/run-40; step 120 = xyorder/run; "
                                        "step 300 = xyorder/run-300")
    assert torch.equal(cells[0:1], plain(comfy_host, tiny)), "'none' is the plain model (connected net unused)"
    loaded = comfy_host.pack.nodes.network_files.load_by_name("xyorder/run.pt")
    patched = comfy_host.pack.nodes.apply.apply_to_model(tiny[0], loaded, 1.0)
    assert torch.equal(cells[2:3], plain(comfy_host, tiny, model=patched))
    # A hypernetwork axis on both X and Y stacks the two networks, X's first.
    _, _, stacked = run_grid(comfy_host, tiny, strength=0.5, x_type="hypernetwork", x_values="xyorder/run.pt",
                             y_type="hypernetwork", y_values="xyorder/run-40")
    second = comfy_host.pack.nodes.network_files.load_by_name("xyorder/run-40.pt")
    apply = comfy_host.pack.nodes.apply.apply_to_model
    both = apply(apply(tiny[0], loaded, 0.5), second, 0.5)
    assert torch.equal(stacked, plain(comfy_host, tiny, model=both))


def test_random_seed_axis_is_never_taken_from_the_cache(comfy_host):
    node = comfy_host.pack.nodes.xygrid.HypernetworkXYGrid
    changed = node.IS_CHANGED(x_type="seed", x_values="1, -1", y_type="none", y_values="")
    assert changed != changed, "NaN never equals the previous run's value"
    fixed = node.IS_CHANGED(x_type="seed", x_values="1, 2", y_type="steps", y_values="-1")
    assert fixed == node.IS_CHANGED(x_type="seed", x_values="1, 2", y_type="steps", y_values="-1")


# ------------------------------------------------------------------ errors before any sampling


@pytest.mark.parametrize("overrides,message", [
    (dict(x_type="steps", x_values="1, two"), r"X axis \(steps\).*'two'"),
    (dict(y_type="cfg", y_values="1-5 (+0)"), r"Y axis \(cfg\).*'1-5 \(\+0\)'.*step"),
    (dict(x_type="seed", x_values="1.5"), r"X axis \(seed\).*'1.5'"),
    (dict(x_type="strength", x_values="0.5, 11"), r"X axis \(strength\).*'11'.*out of range"),
    (dict(y_type="sampler", y_values="euler, nosuch"), r"Y axis \(sampler\).*'nosuch'"),
    (dict(x_type="prompt_sr", x_values="horse, dog"), r"X axis \(prompt_sr\).*'horse'"),
    (dict(x_type="hypernetwork", x_values="missing_net"), r"X axis \(hypernetwork\).*'missing_net'"),
    (dict(x_type="clip_skip", x_values="0"), r"X axis \(clip_skip\).*'0'"),
    (dict(x_type="steps", x_values=""), r"X axis \(steps\).*no values"),
    (dict(x_type="strength", x_values="0, 1"), r"X axis \(strength\).*no hypernetwork"),
    (dict(x_type="seed", x_values="1, 2", y_type="seed", y_values="3"), r"both 'seed'"),
    (dict(x_type="seed", x_values="1-21", y_type="steps", y_values="1-20"), r"420 cells.*limit of 400"),
    (dict(filename_prefix="../escape"), r"filename_prefix"),
])
def test_bad_input_is_a_clear_error_before_sampling(comfy_host, tiny, output_dir, overrides, message):
    import comfy.utils

    calls = []
    original = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda *a, **k: calls.append(a))
    before = sorted(output_dir.rglob("*.png"))
    try:
        with pytest.raises(ValueError, match=message):
            run_grid(comfy_host, tiny, **overrides)
    finally:
        comfy.utils.set_progress_bar_global_hook(original)
    assert not calls, "no cell may be sampled before the inputs are validated"
    assert sorted(output_dir.rglob("*.png")) == before


# ------------------------------------------------------------------ progress, cancel, saving


def test_one_progress_bar_over_all_cells_and_cells_match(comfy_host, tiny):
    import comfy.utils

    calls = []
    original = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview=None, *a, **k: calls.append((value, total)))
    try:
        _, _, cells = run_grid(comfy_host, tiny, x_type="steps", x_values="2, 3")
    finally:
        comfy.utils.set_progress_bar_global_hook(original)
    assert comfy.utils.PROGRESS_BAR_HOOK is original
    assert {total for _, total in calls} == {5}, "one bar whose total is the sum of all cells' steps"
    values = [value for value, _ in calls]
    assert values == sorted(values) and values[-1] == 5 and 2 in values
    assert_cells_match(comfy_host, tiny, cells, [dict(steps=2), dict(steps=3)])


def test_cancel_stops_inside_a_cell_and_writes_nothing(comfy_host, tiny, output_dir):
    import comfy.model_management
    import comfy.utils

    calls = []

    def hook(value, total, preview=None, *args, **kwargs):
        calls.append(value)
        if value >= 3:  # the second cell (steps 2..5 of 5) is under way
            comfy.model_management.interrupt_current_processing(True)

    original = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(hook)
    before = sorted(output_dir.rglob("*.png"))
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            run_grid(comfy_host, tiny, x_type="steps", x_values="2, 3, 3")
    finally:
        comfy.utils.set_progress_bar_global_hook(original)
        comfy.model_management.interrupt_current_processing(False)
    assert max(calls) == 3, f"sampling went on after Cancel: {calls}"
    assert sorted(output_dir.rglob("*.png")) == before


def test_saving_never_overwrites_and_keeps_settings(comfy_host, tiny, output_dir):
    first, _, _ = run_grid(comfy_host, tiny, filename_prefix="xy_sub/again", x_type="cfg", x_values="2, 3")
    second, _, _ = run_grid(comfy_host, tiny, filename_prefix="xy_sub/again", x_type="cfg", x_values="2, 3")
    a, b = first["images"][0], second["images"][0]
    assert a["subfolder"] == b["subfolder"] == "xy_sub"
    assert a["filename"] != b["filename"] and a["filename"].startswith("again_")
    meta, _ = grid_metadata(output_dir, first)
    assert meta["settings"]["sampler_name"] == "euler" and meta["settings"]["positive"] == "a photo of a cat"
    assert meta["axes"][0]["type"] == "cfg" and meta["axes"][0]["values"] == [2.0, 3.0]
    assert not list((output_dir / "xy_sub").glob(".*.tmp")), "no temp files left behind"
