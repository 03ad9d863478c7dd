"""The bench's ratio arithmetic (bench/run.py, bench/gpu.py) on made-up measurements: each row
divides by its reference (floor, A1111 or memory), measured in the same run. Speeds are never
asserted here."""
from __future__ import annotations

import pytest

from bench import gpu, run

MB = 1024 * 1024


def _memory(growth, network_saved=0, unet_saved=100 * MB, grads=0, optimizer=0, memo=0):
    return {"growth": growth, "saved": {"network": network_saved, "unet": unet_saved}, "grad_bytes": grads,
            "optimizer_bytes": optimizer, "memo_bytes": memo}


def test_memory_floor_adds_the_network_activations_then_its_training_state():
    base = _memory(200 * MB)
    ours = _memory(260 * MB, network_saved=20 * MB, grads=10 * MB, optimizer=20 * MB)
    activations, with_state = run.memory_floor(base, ours)
    assert activations == 220 * MB and with_state == 250 * MB


def test_memory_breakdown_items_and_rest_add_up_to_the_extra():
    base = _memory(200 * MB, unet_saved=100 * MB)
    ours = _memory(260 * MB, network_saved=20 * MB, unet_saved=98 * MB, grads=10 * MB, optimizer=20 * MB, memo=MB)
    lines = run.memory_breakdown(base, ours)
    values = {line.split(" | ")[0].strip("| "): float(line.split(" | ")[1]) for line in lines[2:]}
    assert values["extra over the floor"] == pytest.approx(60.0)
    assert values["rest (transient buffers, allocator)"] == pytest.approx(60 - 20 - 10 - 20 - 1 + 2)
    parts = sum(v for k, v in values.items() if k != "extra over the floor")
    assert parts == pytest.approx(60.0)


def test_gpu_rows_use_floor_a1111_and_memory_references():
    point = {"ours": 0.5, "baseline": 0.4, "network": 0.1, "a1111": 1.0, "peak_baseline": 1000 * MB,
             "peak_ours": 1200 * MB, "saved": {"network": 100 * MB, "unet": 0}, "grad_bytes": 50 * MB,
             "optimizer_bytes": 100 * MB}
    (row,) = gpu.train_rows("fp16", {"train": {"4": point}})
    assert row["batch"] == 4 and row["train_it_s"] == pytest.approx(2.0)
    assert row["ratio_floor"] == pytest.approx(1.0) and row["ratio_a1111"] == pytest.approx(0.5)
    assert row["ratio_memory"] == pytest.approx(1200 / 1100)
    assert row["ratio_memory_with_state"] == pytest.approx(1200 / 1250)
    sampling = gpu.sampling_row("fp16", {"sampling": {"ours": 1.0, "stock": 2.0, "baseline": 0.8, "errors": {}}}, 10)
    assert sampling["ratio_stock"] == pytest.approx(0.5) and sampling["ours_it_s"] == pytest.approx(10.0)
    failed = gpu.sampling_row("fp16", {"sampling": {"ours": 1.0, "baseline": 0.8, "errors": {"stock": "boom"}}}, 10)
    assert "ratio_stock" not in failed
    table = gpu.format_tables({"device_name": "x", "model": "m", "date": "d", "train": [row], "sampling": [failed]})
    assert "failed: boom" in table and "| fp16 | 4 |" in table and "0.50 ok" in table
