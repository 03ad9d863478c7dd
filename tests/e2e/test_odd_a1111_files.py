"""Odd A1111 files through the real server: a `dropout_structure` longer than `layer_structure`
applies (the same image as the same weights written the usual way) and the info route says what
was ignored."""
from __future__ import annotations

import json
import urllib.parse
import uuid

import numpy as np

from hypernet.network.fileio import load_pt, save_hypernetwork
from tests.e2e.test_hns import image_branch
from tests.e2e.test_xygrid import saved_images
from tests.support.graphs import Graph
from tests.unit.test_odd_a1111_files import write_a1111


def test_longer_dropout_structure_applies_and_the_info_says_what_was_ignored(comfy_server):
    sub = comfy_server.layout.hypernetworks / f"odd_{uuid.uuid4().hex[:6]}"
    sub.mkdir(parents=True)
    write_a1111(sub / "odd.pt", [1, 2, 1], [0, 0.1, 0, 0], dim=768)
    save_hypernetwork(load_pt(sub / "odd.pt"), sub / "plain.pt")  # the same weights, equal lengths

    status, body = comfy_server.request("/hypernetwork/info?" + urllib.parse.urlencode({"name": f"{sub.name}/odd.pt"}))
    info = json.loads(body)
    assert status == 200, info
    assert info["dropout_structure"] == [0, 0.1, 0]
    assert any("[0.0] ignored" in note for note in info["load_notes"]), info

    graph = Graph()
    loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
    saves = {}
    for key in ("odd", "plain"):
        applied = graph.add("ApplyHypernetwork", model=[loader, 0], hypernetwork_name=f"{sub.name}/{key}.pt",
                            strength=1.0)
        saves[key] = image_branch(graph, loader, [applied, 0], f"odd_{key}")
    saves["none"] = image_branch(graph, loader, [loader, 0], "odd_none")
    result = comfy_server.run(graph.to_api())
    images = {key: saved_images(comfy_server, result, node)[0] for key, node in saves.items()}
    assert np.array_equal(images["odd"], images["plain"])
    assert not np.array_equal(images["odd"], images["none"])
