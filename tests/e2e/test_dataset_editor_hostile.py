"""Issue 22 through the real server: the dataset editor's routes and restore points as a hostile or
careless user meets them. Every refusal is a 4xx with a message, and the folder is byte for byte
what it was (hashed before and after)."""
from __future__ import annotations

import hashlib
import json
import os
import random
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_dataset_editor_routes import CAPTIONS, PREFIX, call, make_folder
from tests.support.images import pattern_rgb


@pytest.fixture
def folder(comfy_server):
    return make_folder(comfy_server.layout.input)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder (hidden ones too) by relative name -> sha256 of its bytes."""
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            files[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def raw_call(server, route: str, body: bytes, timeout: float = 60) -> tuple[int, dict | bytes]:
    req = urllib.request.Request(f"{server.url}{PREFIX}/{route}", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw


def versions(server, folder: Path) -> dict[str, str | None]:
    _, listing = call(server, "list", {"folder": folder.name})
    return {i["name"]: i["version"] for i in listing["items"]}


# ---------------------------------------------------------------- 1. a caption extension that is an image


@pytest.mark.parametrize("ext", [".png", ".PNG", ".jpg", ".webp", ".tiff", ".txt.png", ".pt", ".json", "txt", ".txt\n",
                                 ".t/x", ".", ".a b", 7, True, ["x"]])
def test_an_image_or_malformed_caption_extension_is_refused_everywhere(comfy_server, folder, ext):
    before = snapshot(folder)
    base = versions(comfy_server, folder)
    bodies = {
        "list": {"folder": folder.name, "caption_extension": ext},
        "save": {"folder": folder.name, "caption_extension": ext, "captions": [
            {"name": "a.png", "text": "overwritten", "base": base["a.png"]},
            {"name": "c.png", "text": "created", "base": None}]},
        "bulk": {"folder": folder.name, "caption_extension": ext, "op": {"kind": "add", "tag": "x"},
                 "dry_run": False},
    }
    for route, body in bodies.items():
        status, answer = call(comfy_server, route, body)
        assert status == 400, (route, ext, status, answer)
        assert "caption_extension" in answer["error"], answer
    assert snapshot(folder) == before


def test_caption_extension_rule_is_defined_once():
    """LoadDataset, the tagger, the editor's save and its restore points give the same verdict and the
    same message for every extension: they all call caption_ext.validate_caption_extension."""
    from hypernet.data import caption_save
    from hypernet.data.caption_ext import caption_extension_problem
    from hypernet.data.load import load_dataset
    from hypernet.data.restore_point import parse_restore_point
    from hypernet.tagger.captions import caption_path_for

    import tempfile
    candidates = [".txt", ".caption", ".tags.txt", ".png", ".JPG", ".jfif", ".ico", ".pt", ".optim", ".json", "txt",
                  ".", "..", ".a/b", ".a\\b", ".txt\x00", ".txt\n", ".x" * 20, ".txt ", ".txt.webp", 5, None]
    with tempfile.TemporaryDirectory() as tmp:
        pattern_rgb(16, 16, seed=0).save(os.path.join(tmp, "a.png"))
        for ext in candidates:
            problem = caption_extension_problem(ext)
            verdicts = {}
            for name, attempt in {
                "load": lambda: load_dataset(tmp, caption_extension=ext),
                "tagger": lambda: caption_path_for(os.path.join(tmp, "a.png"), ext),
                "editor": lambda: caption_save.save(tmp, [], ext),
                "restore": lambda: parse_restore_point(json.dumps(
                    {"id": "p", "caption_extension": ext, "captions": {}}).encode(), "p", "p"),
            }.items():
                try:
                    attempt()
                    verdicts[name] = None
                except ValueError as exc:
                    verdicts[name] = str(exc)
            for name, verdict in verdicts.items():
                if problem is None:
                    assert verdict is None, (ext, name, verdict)
                else:
                    assert verdict is not None and problem in verdict, (ext, name, verdict)


def test_no_route_writes_or_deletes_a_listed_image_even_past_the_extension_check(comfy_server, folder,
                                                                                  monkeypatch):
    """Defence in depth: with the extension rule switched off, the save still refuses an image target."""
    import importlib
    module = importlib.import_module("hypernet.data.caption_save")
    monkeypatch.setattr(module, "validate_caption_extension", lambda ext, field="": ext)
    before = snapshot(folder)
    with pytest.raises(ValueError, match="never writes or deletes images"):
        module.save(str(folder), [module.CaptionChange("a.png", "text", None)], ".jpg")
    (folder / "a.jpg").write_bytes(b"\xff\xd8 an image the user owns")
    with pytest.raises(ValueError, match="never writes or deletes images"):
        module.save(str(folder), [module.CaptionChange("a.png", "text", None)], ".jpg")
    assert snapshot(folder) == {**before, "a.jpg": hashlib.sha256(b"\xff\xd8 an image the user owns").hexdigest()}


def test_load_dataset_refuses_an_image_caption_extension(comfy_server, folder):
    from tests.support.graphs import Graph
    from tests.support.server import PromptError

    graph = Graph()
    graph.add("HypernetworkLoadDataset", directory=folder.name, recursive=False, caption_extension=".png",
              repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
              preview_count=1)
    with pytest.raises(PromptError) as refused:
        comfy_server.run(graph.to_api())
    assert "caption_extension" in refused.value.payload["exception_message"]
    assert "image" in refused.value.payload["exception_message"]


# ---------------------------------------------------------------- 2. restore points are input


def plant(folder: Path, point: object, point_id: str = "20990101-000000-abcdef") -> str:
    (folder / ".hypernetwork_restore").mkdir(exist_ok=True)
    raw = point if isinstance(point, bytes) else json.dumps(point).encode()
    (folder / ".hypernetwork_restore" / f"{point_id}.json").write_bytes(raw)
    return point_id


POINT_ID = "20990101-000000-abcdef"
TAMPERED = {
    "image extension": {"id": POINT_ID, "caption_extension": ".png", "captions": {"a.png": "x", "b.png": None}},
    "number extension": {"id": POINT_ID, "caption_extension": 7, "captions": {"a.png": "x"}},
    "escaping extension": {"id": POINT_ID, "caption_extension": ".txt/../../../x", "captions": {"a.png": "x"}},
    "top-level list": [{"id": POINT_ID}],
    "non-text caption": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "fine", "b.png": 5}},
    "list caption": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "fine", "b.png": ["x"]}},
    "captions a list": {"id": POINT_ID, "caption_extension": ".txt", "captions": ["a.png"]},
    "edits a number": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x"}, "edits": 5},
    "invalid edits": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x"},
                      "edits": json.dumps({"excluded": "a.png"})},
    "edits not json": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x"}, "edits": "{"},
    "traversing name": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x",
                                                                                  "../x.png": "y"}},
    "absolute name": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x", "/etc/x.png": "y"}},
    "not an image name": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x", "b.txt": None}},
    "missing image": {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "x", "gone.png": "y"}},
    "other id": {"id": "20990101-000000-000000", "caption_extension": ".txt", "captions": {"a.png": "x"}},
    "not json": b"\xff\xfe not json",
    "deep json": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_restore_point_changes_nothing(comfy_server, folder, case):
    plant(folder, TAMPERED[case])
    before = snapshot(folder)
    status, answer = call(comfy_server, "restore", {"folder": folder.name, "id": POINT_ID})
    assert status in (400, 403, 404), (case, status, answer)
    assert answer["error"]
    assert snapshot(folder) == before, case
    assert comfy_server.alive()


def test_a_restore_is_all_or_nothing(folder, monkeypatch):
    """A failure in the middle of putting files in place undoes the ones already replaced."""
    from hypernet.data import caption_save

    point = caption_save.save(str(folder), [caption_save.CaptionChange("a.png", "new a", _hash(folder / "a.txt")),
                                            caption_save.CaptionChange("b.png", "new b", _hash(folder / "b.txt")),
                                            caption_save.CaptionChange("c.png", "new c", None)]).restore_point
    before = snapshot(folder)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("b.txt"):  # a.txt is already back in place when b.txt fails
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(caption_save.os, "replace", failing_replace)
    with pytest.raises(OSError):
        caption_save.restore(str(folder), point)
    monkeypatch.setattr(caption_save.os, "replace", real_replace)
    assert snapshot(folder) == before
    assert not [n for n in os.listdir(folder) if ".hntmp-" in n]
    result = caption_save.restore(str(folder), point)  # and a clean restore still works
    assert (folder / "a.txt").read_text(encoding="utf-8") == CAPTIONS["a"] and not (folder / "c.txt").exists()
    assert sorted(result.written) == ["a.png", "b.png", "c.png"]


def _hash(path: Path) -> str:
    from hypernet.data.index import content_hash
    return content_hash(path.read_bytes())


# ---------------------------------------------------------------- 3. booleans are booleans


def test_string_false_is_not_false(comfy_server, folder):
    before = snapshot(folder)
    for route, body, field in [
        ("exclusions", {"folder": folder.name, "names": ["a.png"], "excluded": "false", "edits_base": None},
         "excluded"),
        ("exclusions", {"folder": folder.name, "names": ["a.png"], "excluded": 0, "edits_base": None}, "excluded"),
        ("bulk", {"folder": folder.name, "op": {"kind": "add", "tag": "x"}, "dry_run": "false"}, "dry_run"),
        ("bulk", {"folder": folder.name, "op": {"kind": "remove", "tag": "c.t", "regex": "false"},
                  "dry_run": False}, "regex"),
        ("save", {"folder": folder.name, "captions": [{"name": "a.png", "text": "x", "base": "stale"}],
                  "force": "true"}, "force"),
        ("list", {"folder": folder.name, "recursive": "false"}, "recursive"),
        ("list", {"folder": folder.name, "filter": {"uncaptioned": "false"}}, "uncaptioned"),
        ("list", {"folder": folder.name, "limit": True}, "limit"),
        ("list", {"folder": folder.name, "offset": "3"}, "offset"),
        ("crop", {"folder": folder.name, "name": "a.png", "box": [0, 0, True, 1], "edits_base": None}, "box"),
        ("crop", {"folder": folder.name, "name": ["a.png"], "box": None, "edits_base": None}, "name"),
        ("restore", {"folder": folder.name, "id": 5}, "id"),
    ]:
        status, answer = call(comfy_server, route, body)
        assert status == 400, (route, body, status, answer)
        assert field in answer["error"], (field, answer)
    assert snapshot(folder) == before


# ---------------------------------------------------------------- 8. 400, never 500


@pytest.mark.parametrize("new", ["\\3", "x\\", "\\g<x>", "\\g<9>"])
def test_bad_regex_replacements_are_400(comfy_server, folder, new):
    before = snapshot(folder)
    for dry_run in (True, False):
        status, answer = call(comfy_server, "bulk", {"folder": folder.name, "dry_run": dry_run, "op": {
            "kind": "replace", "tag": "(c)at", "new": new, "regex": True}})
        assert status == 400 and "new" in answer["error"], (new, status, answer)
    assert snapshot(folder) == before


def test_a_catastrophic_regex_is_stopped_with_a_400(comfy_server, folder):
    (folder / "a.txt").write_text("a" * 40 + "b, cat", encoding="utf-8")
    before = snapshot(folder)
    status, answer = call(comfy_server, "bulk", {"folder": folder.name, "dry_run": False, "op": {
        "kind": "remove", "tag": "(a+)+$", "regex": True}}, )
    assert status == 400 and "took longer" in answer["error"], answer
    assert snapshot(folder) == before
    status, answer = call(comfy_server, "bulk", {"folder": folder.name, "dry_run": True, "op": {
        "kind": "replace", "tag": "c(a)t", "new": "d\\1g", "regex": True}})
    assert status == 200 and answer["captions"]["a.png"].endswith("dag"), answer  # a sane regex still works


def test_deep_huge_and_odd_bodies_are_4xx(comfy_server, folder):
    before = snapshot(folder)
    deep = b'{"folder": "' + folder.name.encode() + b'", "filter": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for route in ("list", "save", "bulk", "exclusions", "crop", "restore"):
        status, answer = raw_call(comfy_server, route, deep)
        assert status == 400, (route, status, answer)
    status, answer = raw_call(comfy_server, "list", b'{"folder": "%s", "offset": 1e400}' % folder.name.encode())
    assert status == 400 and "offset" in answer["error"]
    status, answer = raw_call(comfy_server, "list", b'{"folder": "%s", "limit": %s}' % (folder.name.encode(),
                                                                                       b"9" * 4000))
    assert status == 400 and "limit" in answer["error"]
    status, answer = raw_call(comfy_server, "crop", b'{"folder": "%s", "name": "a.png", "box": [0, 0, 1e400, 1]}'
                              % folder.name.encode())
    assert status == 400
    names = json.dumps({"folder": folder.name, "names": ["a.png"] * 2_000_000, "excluded": True,
                        "edits_base": None}).encode()
    status, answer = raw_call(comfy_server, "exclusions", names, timeout=120)
    assert 400 <= status < 500, (status, answer)
    status, answer = raw_call(comfy_server, "save", b'{"folder": "x", "pad": "' + b"x" * (40 << 20) + b'"}',
                              timeout=120)
    assert status == 413, (status, answer)
    assert snapshot(folder) == before and comfy_server.alive()


def test_tiny_crops_are_refused(comfy_server, folder):
    before = snapshot(folder)
    for box in ([0, 0, 0.001, 1], [0.5, 0.5, 0.51, 0.51], [0, 0, 0.2, 0.2]):  # the image is 48x32 pixels
        status, answer = call(comfy_server, "crop", {"folder": folder.name, "name": "a.png", "box": box,
                                                     "edits_base": None})
        assert status == 400 and "box" in answer["error"], (box, answer)
    assert snapshot(folder) == before
    status, answer = call(comfy_server, "crop", {"folder": folder.name, "name": "a.png", "box": [0, 0, 0.5, 0.6],
                                                 "edits_base": None})
    assert status == 200, answer


def test_images_the_routes_cannot_name_are_listed_as_skipped(comfy_server, folder):
    pattern_rgb(16, 16, seed=1).save(folder / "back\\slash.png")
    with open(os.path.join(os.fsencode(folder), b"latin\xe9.png"), "wb") as fh:
        pattern_rgb(16, 16, seed=2).save(fh, "PNG")
    status, body = call(comfy_server, "list", {"folder": folder.name})
    assert status == 200, body
    assert body["total"] == 4 and [i["name"] for i in body["items"]] == ["a.png", "b.png", "c.png", "d.png"]
    skipped = {s["name"]: s["reason"] for s in body["skipped"]}
    assert "backslash" in skipped["back\\slash.png"]
    assert "UTF-8" in skipped["latin\ufffd.png"] and body["skipped_count"] == 2
    before = snapshot(folder)
    status, _ = call(comfy_server, "save", {"folder": folder.name, "captions": [
        {"name": "back\\slash.png", "text": "x", "base": None}]})
    assert status == 400 and snapshot(folder) == before


# ---------------------------------------------------------------- fuzz


def _junk(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "big", "float", "inf", "bool", "none", "list", "dict", "deep", "false", "neg"]
    kind = rng.choice(kinds if depth < 3 else kinds[:7])
    return {
        "str": lambda: rng.choice(["", "a.png", "../a.png", "false", "\\", "(a+)+$", "\\3", ".png", "x" * 5000,
                                   "\x00", "🙂", "a.png\\..", "/etc/passwd"]),
        "int": lambda: rng.choice([0, 1, -1, 7, 4097]),
        "big": lambda: 10 ** rng.choice([19, 100, 300]),
        "float": lambda: rng.choice([0.5, -0.0, 1e-300, 3.7]),
        "inf": lambda: float(rng.choice(["inf", "-inf", "nan"])),
        "bool": lambda: rng.choice([True, False]),
        "none": lambda: None,
        "list": lambda: [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))],
        "dict": lambda: {rng.choice(["kind", "tag", "new", "regex", "a.png", "include", "mode"]): _junk(rng, depth + 1)
                         for _ in range(rng.randint(0, 4))},
        "deep": lambda: json.loads("[" * 50 + "]" * 50),
        "false": lambda: "false",
        "neg": lambda: -(10 ** 12),
    }[kind]()


ROUTE_FIELDS = {
    "list": ["filter", "offset", "limit", "overrides", "excluded_names", "selection", "recursive", "with_edits",
             "caption_extension"],
    "save": ["captions", "edits", "edits_base", "force", "caption_extension"],
    "bulk": ["op", "filter", "names", "excluded_names", "overrides", "dry_run", "caption_extension", "recursive"],
    "exclusions": ["names", "excluded", "edits_base", "force"],
    "crop": ["name", "box", "edits_base", "force"],
    "restore": ["id"],
}


def test_fuzzed_bodies_answer_4xx_and_write_nothing(comfy_server, folder):
    plant(folder, {"id": POINT_ID, "caption_extension": ".txt", "captions": {"a.png": "restored"}})
    before = snapshot(folder)
    rng = random.Random(22)
    refused = 0
    for _ in range(240):
        route = rng.choice(sorted(ROUTE_FIELDS))
        body = {"folder": folder.name}
        for field in rng.sample(ROUTE_FIELDS[route], rng.randint(1, min(3, len(ROUTE_FIELDS[route])))):
            body[field] = _junk(rng)
        if route == "bulk" and "dry_run" not in body:
            body["dry_run"] = False
        status, answer = call(comfy_server, route, body)
        assert status < 500, (route, body, status, answer)
        if status == 200:  # junk that happens to be valid (limit 7, an empty name list, force true)
            before = snapshot(folder)
            continue
        refused += 1
        assert 400 <= status < 500 and answer.get("error"), (route, body, status, answer)
        assert snapshot(folder) == before, (route, str(body)[:300], status)
    assert refused > 150 and comfy_server.alive()


