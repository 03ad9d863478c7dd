"""Write safety for the dataset and grid nodes through the real server: symlink loops and captions
linked from outside are skipped and listed, Preprocess 'overwrite' removes only its own files,
a bad output folder and bad grid ranges are named errors, shared caption files are reported."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.test_dataset_nodes import load_node, make_source, preprocess_node, ui_text
from tests.e2e.test_tagger_node import EXPECTED, TAGGED, captions_in, make_images, tag_node
from tests.e2e.test_xygrid import add_grid
from tests.support import fake_tagger
from tests.support.graphs import Graph
from tests.support.server import PromptError


@pytest.fixture(scope="module")
def tagger(comfy_server):
    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name="fake")
    return "fake"


def test_a_symlink_loop_is_skipped_and_listed(comfy_server):
    source = make_source(comfy_server.layout.input)
    for name in ("loop.png", "loopdir"):
        os.symlink(source / name, source / name)  # each points to itself
    graph = Graph()
    load = load_node(graph, str(source))
    report = ui_text(comfy_server.run(graph.to_api()), load)
    assert "3 image(s)" in report
    for name in ("loop.png", "loopdir"):
        assert f"skipped {source / name}: symlink that cannot be followed" in report


def test_fail_mode_names_the_symlink_loop(comfy_server):
    source = make_source(comfy_server.layout.input)
    os.symlink(source / "loop.png", source / "loop.png")
    graph = Graph()
    load_node(graph, str(source), on_bad_file="fail")
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    assert caught.value.payload["exception_type"] == "ValueError"
    assert str(source / "loop.png") in caught.value.payload["exception_message"]


def test_an_output_folder_under_a_file_is_a_named_error(comfy_server):
    source = make_source(comfy_server.layout.input)
    blocker = comfy_server.layout.output / f"blocker_{uuid.uuid4().hex[:6]}"
    blocker.write_text("a file, not a folder")
    graph = Graph()
    preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(blocker / "out"))
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    payload = caught.value.payload
    assert payload["exception_type"] == "ValueError"
    assert "output_directory" in payload["exception_message"] and str(blocker) in payload["exception_message"]
    assert blocker.read_text() == "a file, not a folder" and comfy_server.alive()


def test_preprocess_overwrite_removes_only_its_own_files(comfy_server):
    source = make_source(comfy_server.layout.input)
    out = comfy_server.layout.output / f"own_{source.name}"
    out.mkdir()
    lookalike = out / "00009-0-mine.png"
    lookalike.write_bytes(b"looks like an output, is the user's")
    graph = Graph()
    prep = preprocess_node(graph, [load_node(graph, str(source)), 0], output_directory=str(out),
                           if_output_exists="overwrite")
    report = ui_text(comfy_server.run(graph.to_api()), prep)
    assert lookalike.read_bytes() == b"looks like an output, is the user's"
    assert "kept 1 file(s) it did not write: 00009-0-mine.png" in report


def test_a_caption_linked_from_outside_is_never_read_or_copied(comfy_server, tagger):
    source = make_images(comfy_server.layout.input, stems=("a", "b"))
    secret = comfy_server.layout.root / f"secret_{source.name}.txt"
    secret.write_text("SECRET TEXT FROM OUTSIDE", encoding="utf-8")
    os.symlink(secret, source / "a.txt")
    out = f"outside_{source.name}"
    graph = Graph()
    load = load_node(graph, str(source))
    tag = tag_node(graph, model=tagger, dataset=[load, 0], write_captions="append")
    preprocess_node(graph, [tag, 0], mode="keep", output_directory=out)
    result = comfy_server.run(graph.to_api())
    assert f"caption {source / 'a.txt'} links outside the dataset folder; not read" in ui_text(result, load)
    assert "outside the image's folder" in ui_text(result, tag)
    seen = captions_in(comfy_server.layout.output / out)
    assert not any("SECRET" in text for text in seen.values()), seen
    assert seen["00000-0-a"] == EXPECTED["a"]
    assert (source / "a.txt").is_symlink() and secret.read_text(encoding="utf-8") == "SECRET TEXT FROM OUTSIDE"


def test_two_images_sharing_one_caption_file_are_reported(comfy_server, tagger):
    source = make_images(comfy_server.layout.input, stems=("a",))
    fake_tagger.image_for(TAGGED["b"]).save(source / "a.bmp")  # lossless, so its tags are b's
    graph = Graph()
    tag = tag_node(graph, model=tagger, dataset=[load_node(graph, str(source)), 0], write_captions="overwrite")
    report = ui_text(comfy_server.run(graph.to_api()), tag)
    assert (source / "a.txt").read_text(encoding="utf-8") == EXPECTED["b"], "the first image (a.bmp) writes it"
    assert f"caption not written for {source / 'a.png'}: shares a.txt with a.bmp" in report
    assert "shared 1" in report


@pytest.mark.parametrize("overrides, fragments", [
    (dict(x_type="strength", x_values="0-100 (+1e-320)"), ["0-100 (+1e-320)", "use a larger step"]),
    (dict(filename_prefix="grid_blocker/xy"), ["filename_prefix", "grid_blocker"]),
    (dict(x_type="steps", x_values="1-21", y_type="seed", y_values="1-20"), ["420 cells", "x_values or y_values"]),
])
def test_grid_ranges_and_sizes_are_named_errors(comfy_server, overrides, fragments):
    (comfy_server.layout.output / "grid_blocker").write_text("a file where a subfolder would go")
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    add_grid(graph, loader, **overrides)
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    payload = caught.value.payload
    assert payload["exception_type"] == "ValueError", payload["exception_type"]
    for fragment in fragments:
        assert fragment in payload["exception_message"]
    assert "max_cells" not in payload["exception_message"]
