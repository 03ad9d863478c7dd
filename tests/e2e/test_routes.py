"""GET /hypernetwork/info through the real server: the metadata the Apply node shows, and only for
files inside the hypernetworks folders (escapes are refused, file bytes are never served)."""
from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest

from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import load_hypernetwork, optim_path, save_hypernetwork
from hypernet.network.module import Hypernetwork

ROUTE = "/hypernetwork/info"


def info(server, name: str | None) -> tuple[int, dict]:
    query = "" if name is None else "?" + urllib.parse.urlencode({"name": name})
    status, body = server.request(ROUTE + query)
    return status, json.loads(body)


def make_network(name: str, **overrides) -> Hypernetwork:
    config = dict(name=name, layer_structure=[1.0, 1.5, 1.0], activation_func="relu", is_layer_norm=True,
                  weight_initialization="KaimingNormal", sizes=[8, 16], seed=3, optional_info="made by test_routes")
    config.update(overrides)
    network = Hypernetwork.create(HypernetworkConfig(**config))
    network.step = 42
    network.sd_checkpoint = "abcdef1234"
    network.sd_checkpoint_name = "tiny_base.safetensors"
    return network


@pytest.fixture(scope="module")
def files(comfy_server):
    """A .pt (with a .optim beside it) and a .safetensors in a subfolder of the hypernetworks folder."""
    sub = f"routes_{uuid.uuid4().hex[:8]}"
    folder = comfy_server.layout.hypernetworks / sub
    folder.mkdir(parents=True)
    save_hypernetwork(make_network("routes_pt"), folder / "net.pt")
    optim_path(folder / "net.pt").write_bytes(b"not read by the route")
    save_hypernetwork(make_network("routes_st", activation_func="tanh", is_layer_norm=False),
                      folder / "net.safetensors")
    return sub


def test_info_reports_the_file_metadata(comfy_server, files):
    status, body = info(comfy_server, f"{files}/net.pt")
    assert status == 200, body
    assert body["name"] == f"{files}/net.pt"
    assert body["network_name"] == "routes_pt"
    assert body["format"] == "pt"
    assert body["layer_structure"] == [1.0, 1.5, 1.0]
    assert body["activation_func"] == "relu"
    assert body["is_layer_norm"] is True
    assert sorted(body["widths"]) == [8, 16]
    assert body["step"] == 42
    assert body["sd_checkpoint_name"] == "tiny_base.safetensors"
    assert body["sd_checkpoint"] == "abcdef1234"
    assert body["optional_info"] == "made by test_routes"
    assert body["has_optimizer_state"] is True
    saved = load_hypernetwork(comfy_server.layout.hypernetworks / files / "net.pt")
    assert body["parameters"] == sum(p.numel() for p in saved.parameters())


def test_info_reads_safetensors_files_too(comfy_server, files):
    status, body = info(comfy_server, f"{files}/net.safetensors")
    assert status == 200, body
    assert (body["format"], body["activation_func"], body["is_layer_norm"]) == ("safetensors", "tanh", False)
    assert body["has_optimizer_state"] is False


def test_info_is_metadata_only_never_file_bytes(comfy_server, files):
    path = comfy_server.layout.hypernetworks / files / "net.pt"
    status, raw = comfy_server.request(ROUTE + "?" + urllib.parse.urlencode({"name": f"{files}/net.pt"}))
    assert status == 200
    body = json.loads(raw)
    assert not raw.startswith(b"PK") and len(raw) < 2048, "the answer must be JSON metadata, not the file"
    assert raw != path.read_bytes()
    allowed = (str, int, float, bool, type(None))
    for key, value in body.items():
        values = value if isinstance(value, list) else [value]
        assert all(isinstance(v, allowed) for v in values), f"{key} is not plain metadata: {value!r}"
        assert len(values) <= 16, f"{key} looks like tensor data ({len(values)} values)"


@pytest.mark.parametrize("name", [
    "../../../server.log",  # exists: a naive join would read it
    "../checkpoints/x.safetensors",
    "/etc/passwd",
    "sub/../../../server.log",
])
def test_path_escapes_are_refused(comfy_server, files, name):
    status, body = info(comfy_server, name)
    assert status == 400, (status, body)
    assert set(body) == {"error"} and "pick one from the list" in body["error"]


def test_symlink_leading_out_of_the_folder_is_not_served(comfy_server, files, tmp_path):
    outside = tmp_path / "outside.pt"
    save_hypernetwork(make_network("outside"), outside)
    link = comfy_server.layout.hypernetworks / files / "escape.pt"
    link.symlink_to(outside)
    status, body = info(comfy_server, f"{files}/escape.pt")
    assert status == 404, body


@pytest.mark.parametrize("name, expected", [(None, 400), ("", 400), ("none", 400), ("no_such_file.pt", 404)])
def test_missing_or_unknown_names_are_named_errors(comfy_server, name, expected):
    status, body = info(comfy_server, name)
    assert status == expected, body
    assert body["error"]


def test_a_corrupt_file_is_a_422_with_the_reason(comfy_server, files):
    (comfy_server.layout.hypernetworks / files / "broken.pt").write_bytes(b"\x00garbage, not a torch file")
    status, body = info(comfy_server, f"{files}/broken.pt")
    assert status == 422, body
    assert "broken.pt" in body["error"]
