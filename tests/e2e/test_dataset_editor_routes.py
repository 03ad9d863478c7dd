"""The dataset editor's routes (/hypernetwork/dataset/*) through the real server: every route,
path escapes refused with 400/403 (never 500), two tabs conflicting (409), a 10,000-image folder,
and LoadDataset -> Preprocess picking up exclusions, crops and captions."""
from __future__ import annotations

import io
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
from PIL import Image

from tests.support.graphs import Graph
from tests.support.images import pattern_rgb

PREFIX = "/hypernetwork/dataset"
CAPTIONS = {"a": "cat, red hair, smile", "b": "dog, (red hair:1.2)", "c": None, "d": "cat, 犬"}


def call(server, route: str, body: dict | None = None, **query) -> tuple[int, dict | bytes]:
    path = f"{PREFIX}/{route}"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    status, raw = server.request(path, body)
    try:
        return status, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw


def make_folder(parent: Path, sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    folder = parent / f"edit_{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    for seed, (stem, caption) in enumerate(CAPTIONS.items()):
        size = (sizes or {}).get(stem, (48, 32))
        pattern_rgb(*size, seed=seed).save(folder / f"{stem}.png")
        if caption is not None:
            (folder / f"{stem}.txt").write_text(caption, encoding="utf-8")
    return folder


@pytest.fixture
def folder(comfy_server):
    return make_folder(comfy_server.layout.input)


def test_list_pages_filters_and_counts(comfy_server, folder):
    status, body = call(comfy_server, "list", {"folder": folder.name, "limit": 2})
    assert status == 200, body
    assert body["total"] == 4 and body["matched"] == 4
    assert [i["name"] for i in body["items"]] == ["a.png", "b.png"]
    assert dict(body["tags"]) == {"cat": 2, "red hair": 2, "smile": 1, "dog": 1, "犬": 1}
    assert body["items"][1]["tags"] == ["dog", "(red hair:1.2)"]
    status, body = call(comfy_server, "list", {"folder": str(folder), "offset": 2, "limit": 2})
    assert [i["name"] for i in body["items"]] == ["c.png", "d.png"] and body["items"][0]["has_caption"] is False
    status, body = call(comfy_server, "list", {"folder": folder.name, "filter": {"include": ["cat"],
                                                                              "exclude": ["smile"]}})
    assert [i["name"] for i in body["items"]] == ["d.png"] and dict(body["matched_tags"]) == {"cat": 1, "犬": 1}
    status, body = call(comfy_server, "list", {"folder": folder.name, "filter": {"uncaptioned": True}})
    assert [i["name"] for i in body["items"]] == ["c.png"]
    status, body = call(comfy_server, "list", {"folder": folder.name, "filter": {"include": ["dog", "smile"],
                                                                              "mode": "any"}})
    assert body["matched"] == 2
    status, body = call(comfy_server, "list", {"folder": folder.name, "selection": ["b.png", "d.png"]})
    assert dict(body["selection_tags"]) == {"dog": 1, "red hair": 1, "cat": 1, "犬": 1}
    assert call(comfy_server, "list", {"folder": folder.name, "selection": "b.png"})[0] == 400


def test_thumbnail_is_a_small_cached_jpeg(comfy_server, folder):
    status, raw = call(comfy_server, "thumbnail", folder=folder.name, name="a.png", size=64)
    assert status == 200 and raw[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(raw)) as img:
        assert max(img.size) <= 64 and img.size == (48, 32)
    again = call(comfy_server, "thumbnail", folder=folder.name, name="a.png", size=64)
    assert again == (status, raw)
    assert call(comfy_server, "thumbnail", folder=folder.name, name="a.png", size=65)[0] == 400
    assert call(comfy_server, "thumbnail", folder=folder.name, name="zz.png", size=64)[0] == 404
    (folder / "broken.png").write_bytes(b"not a png at all")
    assert call(comfy_server, "thumbnail", folder=folder.name, name="broken.png", size=64)[0] == 422


def test_save_writes_and_restore_points_undo(comfy_server, folder):
    _, listing = call(comfy_server, "list", {"folder": folder.name})
    versions = {i["name"]: i["version"] for i in listing["items"]}
    status, body = call(comfy_server, "save", {"folder": folder.name, "captions": [
        {"name": "a.png", "text": "cat, blue hair", "base": versions["a.png"]},
        {"name": "c.png", "text": "new caption", "base": versions["c.png"]}]})
    assert status == 200, body
    assert sorted(body["written"]) == ["a.png", "c.png"] and body["restore_point"]
    assert (folder / "a.txt").read_text(encoding="utf-8") == "cat, blue hair"
    assert (folder / "c.txt").read_text(encoding="utf-8") == "new caption"
    status, points = call(comfy_server, "restore_points", folder=folder.name)
    assert status == 200 and [p["id"] for p in points["points"]] == [body["restore_point"]]
    status, restored = call(comfy_server, "restore", {"folder": folder.name, "id": body["restore_point"]})
    assert status == 200, restored
    assert (folder / "a.txt").read_text(encoding="utf-8") == CAPTIONS["a"]
    assert not (folder / "c.txt").exists()
    assert call(comfy_server, "restore", {"folder": folder.name, "id": "../../etc"})[0] == 400


def test_two_tabs_conflict_with_409_naming_what_changed(comfy_server, folder):
    _, tab1 = call(comfy_server, "list", {"folder": folder.name})
    _, tab2 = call(comfy_server, "list", {"folder": folder.name})
    base = {i["name"]: i["version"] for i in tab1["items"]}
    status, _ = call(comfy_server, "save", {"folder": folder.name, "captions": [
        {"name": "b.png", "text": "tab one was here", "base": base["b.png"]}]})
    assert status == 200
    base2 = {i["name"]: i["version"] for i in tab2["items"]}
    status, body = call(comfy_server, "save", {"folder": folder.name, "captions": [
        {"name": "b.png", "text": "tab two", "base": base2["b.png"]},
        {"name": "d.png", "text": "also tab two", "base": base2["d.png"]}]})
    assert status == 409, body
    assert [c["name"] for c in body["conflicts"]] == ["b.png"]
    assert body["conflicts"][0]["current_text"] == "tab one was here"
    assert (folder / "d.txt").read_text(encoding="utf-8") == CAPTIONS["d"], "nothing written on a conflict"
    # exclusions: the second tab's stale edits base is refused as well
    status, ex1 = call(comfy_server, "exclusions", {"folder": folder.name, "names": ["a.png"], "excluded": True,
                                                     "edits_base": tab1["edits_version"]})
    assert status == 200 and ex1["excluded"] == ["a.png"]
    status, body = call(comfy_server, "crop", {"folder": folder.name, "name": "b.png", "box": [0, 0, 0.5, 1],
                                               "edits_base": tab2["edits_version"]})
    assert status == 409 and body["conflicts"][0]["excluded"] == ["a.png"]
    status, body = call(comfy_server, "crop", {"folder": folder.name, "name": "b.png", "box": [0, 0, 0.5, 1],
                                               "edits_base": ex1["edits_version"]})
    assert status == 200 and body["crops"] == {"b.png": [0, 0, 0.5, 1]}


def test_bulk_dry_run_then_apply(comfy_server, folder):
    op = {"kind": "replace", "tag": "red hair", "new": "blue hair"}
    status, body = call(comfy_server, "bulk", {"folder": folder.name, "op": op, "dry_run": True})
    assert status == 200, body
    assert body["changed"] == 2 and body["captions"] == {"a.png": "cat, blue hair, smile",
                                                          "b.png": "dog, (blue hair:1.2)"}
    assert (folder / "a.txt").read_text(encoding="utf-8") == CAPTIONS["a"], "dry run writes nothing"
    status, body = call(comfy_server, "bulk", {"folder": folder.name, "op": {"kind": "add", "tag": "trigger",
                                                                            "position": "front"},
                                               "filter": {"include": ["cat"]}, "dry_run": False})
    assert status == 200 and body["changed"] == 2 and body["restore_point"]
    assert (folder / "d.txt").read_text(encoding="utf-8") == "trigger, cat, 犬"
    assert (folder / "b.txt").read_text(encoding="utf-8") == CAPTIONS["b"]
    status, body = call(comfy_server, "bulk", {"folder": folder.name, "op": {"kind": "remove", "tag": "(",
                                                                            "regex": True}})
    assert status == 400 and "regular expression" in body["error"]


def test_vocabulary_and_folders(comfy_server, folder):
    from tests.support import fake_tagger

    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name="fake")
    status, body = call(comfy_server, "vocabulary")
    assert status == 200 and body["tagger"]
    assert "hatsune miku" in body["tags"] and "c.c." in body["tags"], "WD14 names, underscores as spaces"
    assert len(body["tags"]) == len(fake_tagger.TAG_NAMES)
    status, body = call(comfy_server, "folders")
    assert status == 200 and folder.name in [f["folder"] for f in body["folders"]]
    assert str(comfy_server.layout.input) in body["roots"]


ESCAPES = ["..", "../", "../../server.log", "/etc", "/", "a/../../..", "%2e%2e", "..%2f..", "%252e%252e", "x\x00y",
           "", "~", "/proc/self"]


@pytest.mark.parametrize("bad", ESCAPES)
def test_folder_escapes_are_400_or_403_never_500(comfy_server, bad):
    for route, body in (("list", {"folder": bad}), ("save", {"folder": bad, "captions": []}),
                        ("bulk", {"folder": bad, "op": {"kind": "sort"}})):
        status, answer = call(comfy_server, route, body)
        assert status in (400, 403, 404), (route, bad, status, answer)
        assert status != 404 or bad in ("~",), (route, bad, answer)
        assert answer["error"]
    status, _ = call(comfy_server, "thumbnail", folder=bad, name="a.png")
    assert status in (400, 403, 404)


@pytest.mark.parametrize("name", ["../a.png", "/etc/passwd", "..%2fa.png", "a.png\x00", "sub/../../a.png", "a.txt",
                                  "..\\a.png", ""])
def test_image_name_escapes_are_refused(comfy_server, folder, name):
    for route, body in (("save", {"folder": folder.name, "captions": [{"name": name, "text": "x", "base": None}]}),
                        ("crop", {"folder": folder.name, "name": name, "box": [0, 0, 1, 1]}),
                        ("exclusions", {"folder": folder.name, "names": [name]})):
        status, answer = call(comfy_server, route, body)
        assert status in (400, 403, 404), (route, name, status, answer)
    status, _ = call(comfy_server, "thumbnail", folder=folder.name, name=name)
    assert status in (400, 403, 404)


def test_symlinks_out_are_403(comfy_server, folder, tmp_path):
    outside = make_folder(tmp_path)
    (comfy_server.layout.input / f"link_{uuid.uuid4().hex[:6]}").symlink_to(outside, target_is_directory=True)
    link = next(p for p in comfy_server.layout.input.iterdir() if p.is_symlink() and p.resolve() == outside)
    status, body = call(comfy_server, "list", {"folder": link.name})
    assert status == 403 and "outside" in body["error"]
    (folder / "out.png").symlink_to(outside / "a.png")
    assert call(comfy_server, "thumbnail", folder=folder.name, name="out.png")[0] == 403
    (folder / "c.txt").symlink_to(outside / "a.txt")
    status, body = call(comfy_server, "save", {"folder": folder.name, "captions": [
        {"name": "c.png", "text": "x", "base": None}]})
    assert status == 403
    assert (outside / "a.txt").read_text(encoding="utf-8") == CAPTIONS["a"]


def test_malformed_bodies_are_400(comfy_server, folder):
    status, raw = comfy_server.request(f"{PREFIX}/list", None)  # GET on a POST route
    assert status in (404, 405)
    for body in ({"folder": folder.name, "filter": {"mode": "xor"}}, {"folder": folder.name, "limit": "many"},
                 {"folder": folder.name, "overrides": ["x"]}, {"folder": 42}):
        status, answer = call(comfy_server, "list", body)
        assert status == 400, (body, answer)
    status, answer = call(comfy_server, "crop", {"folder": folder.name, "name": "a.png", "box": [0, 0, 2, 1]})
    assert status == 400 and "fractions" in answer["error"]
    status, answer = call(comfy_server, "save", {"folder": folder.name, "captions": [{"name": "a.png"}]})
    assert status == 400


def test_configured_root_outside_input_is_allowed(comfy_server, tmp_path):
    outside = make_folder(tmp_path / "extra_root")
    assert call(comfy_server, "list", {"folder": str(outside)})[0] == 403
    config = comfy_server.layout.host / "user" / "hypernetwork_datasets.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"dataset_roots": [str(tmp_path / "extra_root")]}))
    try:
        status, body = call(comfy_server, "list", {"folder": str(outside)})
        assert status == 200 and body["total"] == 4
        assert call(comfy_server, "list", {"folder": str(tmp_path)})[0] == 403
    finally:
        config.unlink()


def test_a_10000_image_folder_lists_in_pages_quickly(comfy_server):
    folder = comfy_server.layout.input / f"big_{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, "PNG")
    png = buffer.getvalue()
    for i in range(10_000):
        (folder / f"{i:05d}.png").write_bytes(png)
        (folder / f"{i:05d}.txt").write_text(f"tag{i % 7}, common, n{i % 100}")
    start = time.monotonic()
    status, body = call(comfy_server, "list", {"folder": folder.name, "limit": 100})
    elapsed = time.monotonic() - start
    assert status == 200 and body["total"] == 10_000 and len(body["items"]) == 100
    assert dict(body["tags"])["common"] == 10_000 and dict(body["tags"])["tag3"] == len(range(3, 10_000, 7))
    assert elapsed < 30, f"listing 10,000 images took {elapsed:.1f}s"
    status, body = call(comfy_server, "list", {"folder": folder.name, "offset": 9_950, "limit": 100,
                                               "filter": {"include": ["tag0"]}})
    assert body["matched"] == len(range(0, 10_000, 7)) and body["items"] == []
    status, body = call(comfy_server, "bulk", {"folder": folder.name, "op": {"kind": "replace", "tag": "common",
                                                                            "new": "shared"}, "dry_run": False})
    assert status == 200 and body["changed"] == 10_000
    assert (folder / "09999.txt").read_text() == "tag3, shared, n99"
    assert call(comfy_server, "thumbnail", folder=folder.name, name="09999.png", size=64)[0] == 200


# ------------------------------------------------------------------ LoadDataset -> Preprocess


def _load_and_preprocess(server, directory: str, output: Path) -> tuple:
    graph = Graph()
    load = graph.add("HypernetworkLoadDataset", directory=directory, recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=1)
    prep = graph.add("HypernetworkPreprocess", dataset=[load, 0], width=64, height=64, mode="keep", flip=False,
                     existing_caption="copy", caption_text="", output_directory=str(output),
                     if_output_exists="refuse", workers=1, preview_count=1)
    result = server.run(graph.to_api())
    return result, load, prep


def test_load_dataset_honours_exclusions_crops_and_new_captions(comfy_server):
    folder = make_folder(comfy_server.layout.input, sizes={"a": (96, 64), "b": (64, 64), "c": (64, 64),
                                                            "d": (64, 64)})
    before = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    output = comfy_server.layout.output / f"prep_{uuid.uuid4().hex[:6]}"
    _load_and_preprocess(comfy_server, folder.name, output)
    assert len(list(output.glob("*.png"))) == 4
    output = output.with_name(output.name + "_edited")
    _, listing = call(comfy_server, "list", {"folder": folder.name})
    status, body = call(comfy_server, "save", {
        "folder": folder.name, "edits_base": listing["edits_version"],
        "edits": {"excluded": ["b.png"], "crops": {"a.png": [0.0, 0.0, 0.5, 1.0]}},
        "captions": [{"name": "a.png", "text": "cropped cat", "base": listing["items"][0]["version"]}]})
    assert status == 200, body
    result, load, prep = _load_and_preprocess(comfy_server, folder.name, output)
    report = "\n".join(result.outputs[load]["text"])
    assert "1 image(s) excluded" in report and "1 with a crop" in report
    pngs = sorted(output.glob("*.png"))
    assert len(pngs) == 3, [p.name for p in pngs]
    first = next(p for p in pngs if p.name.endswith("-a.png"))
    with Image.open(first) as img:
        assert img.size == (48, 64), "the crop instruction (left half of 96x64) is applied"
    assert first.with_suffix(".txt").read_text(encoding="utf-8") == "cropped cat"
    assert {p.name: p.read_bytes() for p in folder.glob("*.png")} == before, "sources are never modified"
