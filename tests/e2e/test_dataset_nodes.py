"""Load Dataset and Preprocess Images through the real server: reports, previews, written files,
untouched sources, clear errors, and a rescan when the folder changes (IS_CHANGED)."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.graphs import Graph
from tests.support.images import pattern_rgb, tree_hashes
from tests.support.server import PromptError

SOURCES = {"wide.png": (96, 64), "tall.png": (64, 96), "square.jpg": (80, 80)}
CAPTIONS = {"wide": "a wide pattern", "tall": "a tall pattern"}


def make_source(root: Path) -> Path:
    folder = root / f"ds_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    for seed, (name, (w, h)) in enumerate(SOURCES.items()):
        pattern_rgb(w, h, seed=seed).save(folder / name)
    for stem, text in CAPTIONS.items():
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    (folder / "broken.png").write_bytes(b"not an image" * 20)
    return folder


def load_node(graph: Graph, directory: str, **overrides) -> str:
    inputs = dict(directory=directory, recursive=False, caption_extension=".txt", repeats_from_folder_names=False,
                  on_bad_file="skip and report", missing_caption="empty", preview_count=8)
    inputs.update(overrides)
    return graph.add("HypernetworkLoadDataset", **inputs)


def preprocess_node(graph: Graph, dataset: list, **overrides) -> str:
    inputs = dict(dataset=dataset, width=64, height=64, mode="crop", flip=False, existing_caption="copy",
                  caption_text="", output_directory="", if_output_exists="refuse", workers=1, preview_count=8)
    inputs.update(overrides)
    return graph.add("HypernetworkPreprocess", **inputs)


def ui_text(result, node_id: str) -> str:
    return "\n".join(result.outputs[node_id]["text"])


def temp_folder(server) -> Path:
    return getattr(server.layout, "temp", server.layout.root / "temp")


def preview_files(server, result, node_id: str) -> list[np.ndarray]:
    arrays = []
    for info in result.outputs[node_id]["images"]:
        folder = temp_folder(server) if info["type"] == "temp" else server.layout.output
        with Image.open(folder / info.get("subfolder", "") / info["filename"]) as img:
            arrays.append(np.asarray(img.convert("RGB")))
    return arrays


def executed_nodes(result) -> set[str]:
    return {e["data"]["node"] for e in result.events
            if e.get("type") == "executing" and e["data"].get("node") is not None}


def test_load_then_preprocess_writes_outputs_and_leaves_sources_alone(comfy_server):
    source = make_source(comfy_server.layout.input)
    before = tree_hashes(source)
    out_name = f"pp_{source.name}"
    graph = Graph()
    load = load_node(graph, source.name)  # relative to the input folder
    prep = preprocess_node(graph, [load, 0], flip=True, output_directory=out_name, caption_text="tok",
                           existing_caption="prepend")  # A1111's name for existing_first, as saved workflows hold
    load_preview = graph.add("PreviewImage", images=[load, 2])
    prep_preview = graph.add("PreviewImage", images=[prep, 2])
    result = comfy_server.run(graph.to_api())

    load_report = ui_text(result, load)
    assert "3 image(s)" in load_report and "Skipped: 1" in load_report and "broken.png" in load_report
    prep_report = ui_text(result, prep)
    assert "3 of 3 source image(s) -> 6 output(s)" in prep_report, prep_report

    out = comfy_server.layout.output / out_name
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 6 and pngs[0].startswith("00000-0-")
    for name in pngs:
        with Image.open(out / name) as img:
            assert img.size == (64, 64)
    first, flipped = (np.asarray(Image.open(out / n).convert("RGB")) for n in pngs[:2])
    assert np.array_equal(first[:, ::-1], flipped), "the flipped copy mirrors the first output"
    captions = {p.stem: p.read_text(encoding="utf-8") for p in out.glob("*.txt")}
    sorted_sources = sorted(SOURCES)  # LoadDataset lists files by name: square, tall, wide
    for stem, text in captions.items():
        source_stem = Path(sorted_sources[int(stem[:5])]).stem
        assert text == f"{CAPTIONS.get(source_stem, '')} tok".strip()
    assert len(captions) == 6
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [".hn_preprocess.json"], f"temp files left behind: {hidden}"
    manifest = json.loads((out / ".hn_preprocess.json").read_text())
    assert manifest["complete"] is True and len(manifest["files"]) == 12

    assert tree_hashes(source) == before, "source images or captions were modified"
    assert len(preview_files(comfy_server, result, load_preview)) == 3
    previews = preview_files(comfy_server, result, prep_preview)
    assert len(previews) == 6 and previews[0].shape == (64, 64, 3)


def test_missing_directory_is_a_named_error_and_server_stays_up(comfy_server):
    graph = Graph()
    load_node(graph, "no_such_dataset_folder")
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    assert str(comfy_server.layout.input / "no_such_dataset_folder") in str(caught.value)
    assert comfy_server.alive() and comfy_server.get_json("/object_info/HypernetworkLoadDataset")


def test_renamed_caption_values_are_listed_and_unknown_ones_refused(comfy_server):
    info = comfy_server.get_json("/object_info/HypernetworkPreprocess")["HypernetworkPreprocess"]
    assert info["input"]["required"]["existing_caption"][0] == ["ignore", "copy", "existing_first", "new_first"]
    graph = Graph()
    prep = preprocess_node(graph, [load_node(graph, make_source(comfy_server.layout.input).name), 0],
                           existing_caption="merge")
    # the host refuses the Preprocess node (and runs only the valid Load Dataset output)
    _, body = comfy_server.request("/prompt", {"prompt": graph.to_api(), "client_id": "renamed-values"})
    errors = json.loads(body).get("node_errors", {})
    assert prep in errors, body
    assert "existing_caption" in json.dumps(errors[prep]) and "existing_first" in json.dumps(errors[prep])


def test_existing_output_folder_is_refused_by_name(comfy_server):
    source = make_source(comfy_server.layout.input)
    taken = comfy_server.layout.output / f"taken_{source.name}"
    taken.mkdir()
    (taken / "keep_me.txt").write_text("user file")
    graph = Graph()
    preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(taken),
                    if_output_exists="refuse")
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    assert str(taken) in str(caught.value) and "new_subfolder" in str(caught.value)
    assert sorted(p.name for p in taken.iterdir()) == ["keep_me.txt"]


def test_folder_change_triggers_a_rescan(comfy_server):
    source = make_source(comfy_server.layout.input)
    graph = Graph()
    load = load_node(graph, str(source), preview_count=0)
    first = comfy_server.run(graph.to_api())
    assert load in executed_nodes(first) and "3 image(s)" in ui_text(first, load)

    again = comfy_server.run(graph.to_api())
    assert load not in executed_nodes(again), "an unchanged folder is served from the cache"

    pattern_rgb(40, 40, seed=9).save(source / "added.png")
    changed = comfy_server.run(graph.to_api())
    assert load in executed_nodes(changed), "adding a file must rescan the folder"
    assert "4 image(s)" in ui_text(changed, load)

    (source / "tall.txt").write_text("a new caption", encoding="utf-8")
    recaptioned = comfy_server.run(graph.to_api())
    assert load in executed_nodes(recaptioned), "a changed caption must rescan the folder"
