"""WD14 Tagger through the real server with the stand-in ONNX tagger: tags become the captions the
next node sees, caption files are written only in write modes, lazy Preprocess steps are applied
before tagging, an IMAGE batch is tagged, and a corrupt model is a named error."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image

from tests.support import fake_tagger
from tests.support.graphs import Graph
from tests.support.images import tree_hashes
from tests.support.server import PromptError

from tests.e2e.test_dataset_nodes import load_node, preprocess_node, ui_text

MODEL = "fake"
# image stem -> the tags its pixels trigger in the stand-in model
TAGGED = {
    "a": {"1girl": 0.95, "long_hair": 0.8},
    "b": {"hatsune_miku": 0.97, "smile": 0.9},
    "c": {"hat_(object)": 0.9},
}
# captions as the node writes them: underscores replaced, brackets escaped, characters first, by confidence
EXPECTED = {"a": "1girl, long hair", "b": "hatsune miku, smile", "c": "hat \\(object\\)"}


@pytest.fixture(scope="module")
def tagger(comfy_server):
    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name=MODEL)
    return MODEL


def make_images(root: Path, stems=("a", "b", "c"), captions: dict | None = None) -> Path:
    folder = root / f"tag_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    for stem in stems:
        fake_tagger.image_for(TAGGED[stem]).save(folder / f"{stem}.png")
    for stem, text in (captions or {}).items():
        (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    return folder


def tag_node(graph: Graph, **inputs) -> str:
    values = dict(model=MODEL, general_threshold=0.35, character_threshold=0.85, exclude_tags="",
                  replace_underscores=True, escape_brackets=True, sort="confidence", characters_first=True,
                  include_rating=False, max_tags=0, write_captions="off", batch_size=2, unload_after=False)
    values.update(inputs)
    return graph.add("HypernetworkWD14Tag", **values)


def mirrored(tag: str) -> str:
    """The tag the stand-in model reads from the mirror image of `tag`'s region (same channel)."""
    index = fake_tagger.TAG_NAMES.index(tag)
    region, channel = divmod(index, 3)
    row, col = divmod(region, fake_tagger.GRID)
    return fake_tagger.TAG_NAMES[(row * fake_tagger.GRID + fake_tagger.GRID - 1 - col) * 3 + channel]


def captions_in(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


def test_tags_are_written_next_to_the_files_and_seen_by_the_next_node(comfy_server, tagger):
    source = make_images(comfy_server.layout.input, captions={"a": "old caption"})
    before = tree_hashes(source)
    first_out, second_out = f"t1_{source.name}", f"t2_{source.name}"
    graph = Graph()
    prep = preprocess_node(graph, [load_node(graph, source.name), 0], output_directory=first_out)
    tag = tag_node(graph, dataset=[prep, 0], write_captions="overwrite")
    check = preprocess_node(graph, [tag, 0], mode="keep", output_directory=second_out)
    result = comfy_server.run(graph.to_api())

    written = captions_in(comfy_server.layout.output / first_out)
    assert written == {f"0000{i}-0-{stem}": EXPECTED[stem] for i, stem in enumerate("abc")}
    seen = captions_in(comfy_server.layout.output / second_out)
    assert sorted(seen.values()) == sorted(EXPECTED.values()), "the next node must see the tags as captions"
    report = ui_text(result, tag)
    assert "3 of 3 image(s) tagged" in report and "overwritten 1" in report and "written 2" in report
    assert "3 of 3 source image(s)" in ui_text(result, check)
    assert tree_hashes(source) == before, "the source folder is not the tagged dataset's folder"


def test_lazy_steps_are_applied_before_tagging_and_off_writes_nothing(comfy_server, tagger):
    source = make_images(comfy_server.layout.input, stems=("a",))
    before = tree_hashes(source)
    probe = fake_tagger.image_for(TAGGED["b"])
    probe_name = f"probe_{source.name}.png"
    probe.save(comfy_server.layout.input / probe_name)
    out = f"t3_{source.name}"
    graph = Graph()
    lazy = preprocess_node(graph, [load_node(graph, source.name), 0], mode="keep", flip=True)
    image = graph.add("LoadImage", image=probe_name)
    tag = tag_node(graph, dataset=[lazy, 0], image=[image, 0], write_captions="off")
    preprocess_node(graph, [tag, 0], mode="keep", output_directory=out)
    result = comfy_server.run(graph.to_api())

    seen = captions_in(comfy_server.layout.output / out)
    assert (mirrored("1girl"), mirrored("long_hair")) == ("^_^", "hat_(object)")
    flipped = "^_^, hat \\(object\\)"  # the kaomoji keeps its underscore
    assert seen == {"00000-0-a": EXPECTED["a"], "00001-0-a": flipped}, "the flipped copy is tagged as flipped"
    assert tree_hashes(source) == before, "write_captions off must not write caption files"
    report = ui_text(result, tag)
    assert "1 from the image input, 2 from the dataset" in report
    assert f"image[0]: {EXPECTED['b']}" in report, "the image input's tags are reported"


def test_lazy_items_append_one_caption_per_source_file(comfy_server, tagger):
    source = make_images(comfy_server.layout.input, stems=("a",), captions={"a": "old tag, 1girl"})
    with Image.open(source / "a.png") as img:
        pixels = img.tobytes()
    graph = Graph()
    lazy = preprocess_node(graph, [load_node(graph, str(source)), 0], mode="keep", flip=True)
    tag_node(graph, dataset=[lazy, 0], write_captions="append")  # the old name of existing_first, still accepted
    comfy_server.run(graph.to_api())

    expected = ["old tag", "1girl", "long hair", "^_^", "hat \\(object\\)"]  # original, then flipped copy
    assert (source / "a.txt").read_text(encoding="utf-8") == ", ".join(expected)
    with Image.open(source / "a.png") as img:
        assert img.tobytes() == pixels


def test_corrupt_model_is_a_named_error(comfy_server, tagger):
    name = f"broken_{uuid.uuid4().hex[:6]}"
    (comfy_server.layout.taggers / f"{name}.onnx").write_bytes(b"\x00not an onnx model" * 50)
    (comfy_server.layout.taggers / f"{name}.csv").write_text(fake_tagger.tags_csv())
    source = make_images(comfy_server.layout.input, stems=("a",))
    graph = Graph()
    tag_node(graph, model=name, dataset=[load_node(graph, str(source)), 0])
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    assert f"{name}.onnx" in str(caught.value) and "download" in str(caught.value)
    assert comfy_server.alive()


def test_model_list_has_installed_and_downloadable_taggers(comfy_server, tagger):
    choices = comfy_server.get_json("/object_info/HypernetworkWD14Tag")["HypernetworkWD14Tag"]["input"][
        "required"]["model"][0]
    assert MODEL in choices
    assert "(download) wd-v1-4-moat-tagger-v2" in choices
