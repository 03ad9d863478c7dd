"""MonkeyPatch `.hns` compositions through the real server: Apply Hypernetwork and the XY grid take
them from the hypernetworks folder, the images match the extension's semantics (references built
from stacked Apply nodes and from identical member copies), the info route shows the composition,
and every error names the file and the member."""
from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid

import numpy as np
import pytest

from hypernet.network.config import HypernetworkConfig
from hypernet.network.fileio import save_hypernetwork
from hypernet.network.module import Hypernetwork
from tests.e2e.test_xygrid import add_grid, grid_file, saved_images
from tests.support.graphs import Graph, tiny_txt2img
from tests.support.networks import loud_weights
from tests.support.server import PromptError

SIZE = 32
STEPS = 2
UID = uuid.uuid4().hex[:6]


def n(name: str) -> str:
    """A member name unique to this test session (names resolve across the whole folder)."""
    return f"h{UID}_{name}"


def _network(name: str, seed: int, sizes=(768, 32, 64)) -> Hypernetwork:
    config = HypernetworkConfig(name=name, layer_structure=[1, 2, 1], activation_func="relu", sizes=list(sizes),
                                seed=seed)
    return loud_weights(Hypernetwork.create(config), seed, std=0.2)


@pytest.fixture(scope="module")
def folder(comfy_server):
    sub = comfy_server.layout.hypernetworks / f"hns_{UID}"
    sub.mkdir(parents=True)
    save_hypernetwork(_network("a", 1), sub / f"{n('a')}.pt")
    save_hypernetwork(_network("a", 1), sub / f"{n('a2')}.pt")  # the same weights under another name
    save_hypernetwork(_network("b", 2), sub / f"{n('b')}.pt")
    save_hypernetwork(_network("wide", 3, sizes=(1024,)), sub / f"{n('wide')}.pt")
    sha = hashlib.sha256((sub / f"{n('a')}.pt").read_bytes()).hexdigest()[:10]
    files = {
        "seq": [n("a"), n("b")],
        "hash": [f"{n('a')}({sha})", n("b")],
        "par": {n("a"): 3, n("a2"): 1},
        "set": {n("a"), n("a2")},
        "tuple": (n("a"), 0.5),
        "nested": {repr([n("a"), n("b")]): 1, repr([n("a2"), n("b")]): 1},
        "missing": [n("a"), n("nope")],
        "self": [n("a"), n("self")],
        "loop1": [n("loop2")], "loop2": [n("loop1")],
        "weight": {n("a"): 0.5, n("b"): -1},
        "strength": (n("a"), 2),
        "wide": [n("a"), n("wide")],
    }
    for key, value in files.items():
        (sub / f"{n(key)}.hns").write_text(repr(value))
    return sub.name


def rel(folder: str, key: str, ext: str = "hns") -> str:
    return f"{folder}/{n(key)}.{ext}"


def image_branch(graph: Graph, loader: str, model: list, prefix: str) -> str:
    ids = tiny_txt2img(graph, model, [loader, 1], [loader, 2], prompt="a cat", seed=5, steps=STEPS, size=SIZE)
    return graph.add("SaveImage", images=[ids["decode"], 0], filename_prefix=prefix)


def apply(graph: Graph, model: list, name: str, strength: float = 1.0) -> list:
    return [graph.add("ApplyHypernetwork", model=model, hypernetwork_name=name, strength=strength), 0]


def test_every_kind_gives_the_extensions_image(comfy_server, folder):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    base = [loader, 0]
    saves = {key: image_branch(graph, loader, apply(graph, base, rel(folder, key)), f"hns_{key}")
             for key in ("seq", "hash", "par", "set", "tuple", "nested")}
    saves["plain"] = image_branch(graph, loader, base, "hns_plain")
    saves["a"] = image_branch(graph, loader, apply(graph, base, rel(folder, "a", "pt")), "hns_ref_a")
    saves["a_half"] = image_branch(graph, loader, apply(graph, base, rel(folder, "a", "pt"), 0.5), "hns_ref_ah")
    stacked = apply(graph, apply(graph, base, rel(folder, "a", "pt")), rel(folder, "b", "pt"))
    saves["ab"] = image_branch(graph, loader, stacked, "hns_ref_ab")
    result = comfy_server.run(graph.to_api())
    img = {key: saved_images(comfy_server, result, node)[0].astype(int) for key, node in saves.items()}

    assert not np.array_equal(img["a"], img["plain"]) and not np.array_equal(img["ab"], img["a"])
    # a sequence is the two networks stacked, K and V chained (exactly what two Apply nodes do)
    assert np.array_equal(img["seq"], img["ab"])
    assert np.array_equal(img["hash"], img["ab"])
    # a strength tuple is the member at that strength
    assert np.array_equal(img["tuple"], img["a_half"])
    # parallel members see the same input and are blended with weights normalised to 1: blending
    # a network with an identical copy (3:1, or a set) is that network; unnormalised it would be 4x
    for key in ("par", "set"):
        assert np.abs(img[key] - img["a"]).max() <= 1, key
    # nested quoted groups: (a -> b) blended with (a2 -> b) = a -> b
    assert np.abs(img["nested"] - img["ab"]).max() <= 1


@pytest.mark.parametrize("key, fragments", [
    ("missing", ["{key}.hns", "member '{nope}' is missing"]),
    ("self", ["{key}.hns", "member '{self}'", "a cycle"]),
    ("loop1", ["{key}.hns", "member '{loop2}'", "a cycle"]),
    ("weight", ["{key}.hns", "member '{b}'", "weight -1 is out of range"]),
    ("strength", ["{key}.hns", "member '{a}'", "strength 2 is out of range"]),
    ("wide", ["{key}.hns", "member '{wide}'", "[1024]", "none match"]),
])
def test_errors_name_the_file_and_the_member(comfy_server, folder, key, fragments):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    image_branch(graph, loader, apply(graph, [loader, 0], rel(folder, key)), "hns_err")
    with pytest.raises(PromptError) as caught:
        comfy_server.run(graph.to_api())
    message = str(caught.value)
    names = {k: n(k) for k in ("nope", "self", "loop2", "a", "b", "wide")}
    for fragment in fragments:
        assert fragment.format(key=n(key), **names) in message, message
    assert "ApplyHypernetwork" in message
    assert comfy_server.alive()


def test_compositions_are_listed_for_apply_and_the_grid_but_not_for_training(comfy_server, folder):
    apply_info = comfy_server.get_json("/object_info/ApplyHypernetwork")["ApplyHypernetwork"]
    assert rel(folder, "seq") in apply_info["input"]["required"]["hypernetwork_name"][0]
    train = comfy_server.get_json("/object_info/TrainHypernetwork")["TrainHypernetwork"]
    listed = [v for spec in train["input"].get("required", {}).values() if isinstance(spec[0], list) for v in spec[0]]
    assert not any(str(v).endswith(".hns") for v in listed)


def test_info_route_shows_the_composition_and_names_bad_members(comfy_server, folder):
    status, body = comfy_server.request("/hypernetwork/info?" + urllib.parse.urlencode({"name": rel(folder, "par")}))
    info = json.loads(body)
    assert status == 200, info
    assert info["format"] == "hns"
    assert info["composition"] == f"{{{n('a')} 75%, {n('a2')} 25%}}"
    assert [m["file"] for m in info["members"]] == [rel(folder, "a", "pt"), rel(folder, "a2", "pt")]
    assert info["tree"]["kind"] == "parallel" and info["tree"]["items"][0]["weight"] == 0.75
    status, body = comfy_server.request("/hypernetwork/info?" + urllib.parse.urlencode(
        {"name": rel(folder, "missing")}))
    assert status == 422 and f"member '{n('nope')}' is missing" in json.loads(body)["error"]


def test_grid_hypernetwork_axis_takes_a_composition(comfy_server, folder):
    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=5)
    grid = add_grid(graph, loader, seed=5, x_type="hypernetwork", x_values=f"{n('seq')}.hns, none",
                    filename_prefix="hns_grid")
    cells = graph.add("SaveImage", images=[grid, 1], filename_prefix="hns_grid_cells")
    stacked = apply(graph, apply(graph, [loader, 0], rel(folder, "a", "pt")), rel(folder, "b", "pt"))
    reference = image_branch(graph, loader, stacked, "hns_grid_ref")
    result = comfy_server.run(graph.to_api())
    meta, _, _ = grid_file(comfy_server, result, grid)
    assert meta["axes"][0]["values"][0] == rel(folder, "seq")
    got = saved_images(comfy_server, result, cells)
    assert np.array_equal(got[0], saved_images(comfy_server, result, reference)[0])
