"""The run file (hypernet/train/run_file.py) as hostile input, and the ranks' batch shares."""
from __future__ import annotations

import copy
import json

import pytest

from hypernet.data.dataset import Dataset, DatasetItem
from hypernet.train.batches import BatchPlan, rank_share
from hypernet.train.config import TrainConfig
from hypernet.train.preview import PreviewSettings
from hypernet.train.run_file import MAX_RUN_FILE_BYTES, LoaderNode, NetworkSource, RunFile

SHA = "ab" * 32


def run_file() -> RunFile:
    dataset = Dataset([DatasetItem("/data/a.png", 64, 64, "a cat", 2), DatasetItem("/data/b.png", 64, 48)], "/data",
                      [{"step": "load"}])
    loader = LoaderNode("4", "CheckpointLoaderSimple", {"ckpt_name": "sd15/model.safetensors"},
                        {"model": 0, "clip": 1, "vae": 2}, "ckpt_name", SHA)
    return RunFile("my_net", TrainConfig(steps=50, batch_size=2, seed=9), PreviewSettings(prompt="x", seed=3), True,
                   False, NetworkSource(None, "my_net.start.pt", SHA), dataset, loader, "9")


def tampered(change) -> str:
    data = json.loads(run_file().to_json())
    change(data)
    return json.dumps(data)


def test_round_trip():
    original = run_file()
    again = RunFile.from_json(original.to_json())
    assert again == original
    assert again.to_json() == original.to_json()


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(format="something"), "not a run file"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(resume="false"), "resume"),
    (lambda d: d.update(extra=1), "unknown"),
    (lambda d: d["config"].update(batch_size="2"), "config"),
    (lambda d: d["config"].update(shuffle_tags="false"), "config"),
    (lambda d: d["preview"].update(steps=True), "preview.steps"),
    (lambda d: d["preview"].update(cfg=float("inf")), "preview.cfg"),
    (lambda d: d["network"].update(start_file="../../etc/x.start.pt"), "start_file"),
    (lambda d: d["network"].update(start_file="x.pt"), "start_file"),
    (lambda d: d["network"].update(file="net.pt"), "exactly one"),
    (lambda d: d["network"].update(sha256="ABC"), "sha256"),
    (lambda d: d["base_model"]["inputs"].update(ckpt_name="../../secret.safetensors"), "ckpt_name"),
    (lambda d: d["base_model"]["inputs"].update(ckpt_name=["1", 0]), "inputs.ckpt_name"),
    (lambda d: d["base_model"].update(class_type="a/b;rm"), "class_type"),
    (lambda d: d["base_model"].update(outputs={"model": 0}), "outputs"),
    (lambda d: d["base_model"].update(sha256=None), "sha256"),
    (lambda d: d["dataset"]["items"][0].update(width="64"), "width"),
    (lambda d: d["dataset"]["items"][0].update(path="relative.png"), "dataset"),
    (lambda d: d["dataset"].update(items=[]), "no items"),
    (lambda d: d.update(name="../evil"), "name"),
])
def test_tampered_fields_are_refused_by_name(change, field):
    with pytest.raises(ValueError, match=field):
        RunFile.from_json(tampered(change))


def test_not_json_deep_and_huge_bodies_are_refused():
    with pytest.raises(ValueError, match="not valid JSON"):
        RunFile.from_json("{")
    with pytest.raises(ValueError, match="nested too deeply"):
        RunFile.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="MiB"):
        RunFile.from_json(" " * (MAX_RUN_FILE_BYTES + 1))


def test_rank_shares_are_disjoint_deterministic_and_cover_every_batch():
    plan = BatchPlan([(64, 64)] * 7, [1] * 7, batch_size=3, seed=1)
    for index in range(6):
        planned = plan.batch(index)
        for world in (1, 2, 3, 4):
            rows = [list(range(len(planned.items)))[rank_share(planned, r, world).rows] for r in range(world)]
            assert sorted(sum(rows, [])) == list(range(len(planned.items)))  # each row exactly once
            shares = [rank_share(planned, r, world).share for r in range(world)]
            assert sum(shares) == pytest.approx(1.0)
            assert rows == [list(range(len(planned.items)))[rank_share(copy.copy(planned), r, world).rows]
                            for r in range(world)]
    assert planned.rows is None and planned.share == 1.0
    with pytest.raises(ValueError, match="rank 2"):
        rank_share(planned, 2, 2)
