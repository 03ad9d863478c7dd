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


def test_a_row_from_rounds_takes_their_median_and_is_sure_only_when_its_interval_is():
    sure = run.make_row("x", 1.0, 1.0, run.at_most(1.20), ratios=[1.05, 1.10, 1.02, 1.15])
    assert sure.ratio == pytest.approx(1.075) and sure.spread == (1.02, 1.15) and sure.passed and sure.sure
    unsure = run.make_row("x", 1.0, 1.0, run.at_most(1.20), ratios=[1.05, 1.25, 1.10])
    assert unsure.passed and unsure.sure is False
    table = run.format_table([sure, unsure])
    assert "1.02-1.15" in table and "yes (not sure: the interval straddles the goal)" in table
    assert unsure.to_dict()["spread"] == [1.05, 1.25] and "spread" not in run.make_row("y", 2, 1, run.at_most(3)).to_dict()
    # 13 rounds: the median's 98% interval drops the two extremes on each side, so one stray round
    # on the other side of the goal no longer makes the verdict unsure
    rounds = [0.97, 0.96, 0.98, 0.90, 0.97, 0.99, 0.96, 0.97, 1.04, 0.98, 0.97, 0.96, 0.98]
    row = run.make_row("t", 1.0, 1.0, run.at_least(0.95), ratios=rounds)
    assert row.spread == (0.90, 1.04) and row.passed and row.sure
    assert row.interval[:2] == (0.96, 0.98) and row.interval[2] == pytest.approx(0.978, abs=1e-3)
    assert "0.96-0.98 (98%)" in run.format_table([row])


@pytest.mark.parametrize("n", [1, 3, 5, 6, 9, 13, 20])
def test_the_median_interval_has_the_coverage_it_claims(n):
    """Coverage by simulation: the true median (0 for a symmetric distribution) lies inside the
    interval at least as often as claimed."""
    import random

    from bench.harness import median_interval

    rng = random.Random(n)
    claimed = median_interval([rng.gauss(0, 1) for _ in range(n)])[2]
    inside = sum(low <= 0 <= high for low, high, _ in
                 (median_interval([rng.gauss(0, 1) for _ in range(n)]) for _ in range(4000)))
    assert inside / 4000 >= claimed - 0.02
    assert claimed >= 0.95 or n < 6, "from 6 values on, the interval reaches 95%"


def test_paired_ratios_divide_round_by_round():
    from bench.harness import paired_ratios

    assert paired_ratios([2.0, 3.0, 4.0], [1.0, 2.0, 0.0]) == [2.0, 1.5]


def test_node_step_costs_leave_out_the_first_step_and_count_steps_after_a_save_apart():
    from bench.cases_node import step_costs

    marks = [(1, 10.0, 100.0), (2, 11.0, 102.0), (3, 12.0, 104.0), (4, 13.5, 107.0), (5, 14.5, 109.0)]
    costs = step_costs(marks, special={3})
    assert costs["cpu"] == [1.0, 1.0, 1.0] and costs["after_special_cpu"] == [1.5]
    assert costs["wall"] == [2.0, 2.0, 2.0] and costs["after_special_wall"] == [3.0]


def test_realsize_breakdown_adds_up_to_the_nodes_extra_over_the_floor():
    floor = {"growth": 1000 * MB, "saved": {"network": 0, "unet": 900 * MB}}
    step = {"growth": 1200 * MB, "saved": {"network": 30 * MB, "unet": 905 * MB}, "grad_bytes": 40 * MB,
            "optimizer_bytes": 80 * MB, "network_param_bytes": 40 * MB, "memo_bytes": MB}
    node = {"growth": 1500 * MB, "network_param_bytes": 40 * MB}
    lines = run.realsize_breakdown(floor, step, node)
    values = [float(line.split(" | ")[1]) for line in lines[2:-1]]
    assert sum(values) == pytest.approx(500.0) and lines[-1].startswith("| extra over the floor | 500.0")
