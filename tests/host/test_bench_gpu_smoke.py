"""bench/gpu.py in its CPU smoke mode (tiny UNet): the very code path a GPU machine runs, so the
first GPU run works the first time. Checks the report's content, never its speeds."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_gpu_bench_smoke_mode_reports_every_dtype_and_batch(host_path, tmp_path):
    out = tmp_path / "gpu.json"
    env = dict(os.environ, COMFYUI_PATH=str(host_path), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu.py"), "--tiny", "--dtypes", "fp32,fp16",
                           "--batches", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=str(REPO_ROOT), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == {}
    assert sorted((r["dtype"], r["batch"]) for r in report["train"]) == [("fp16", 2), ("fp32", 2)]
    for row in report["train"]:
        for key in ("train_it_s", "ratio_floor", "ratio_a1111", "ratio_memory", "ratio_memory_with_state"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        assert row["network_activations_mb"] > 0  # the census saw the network's saved tensors
        assert row["network_grads_adamw_mb"] > 0
        assert row["peak_mb_ours"] > 0 and row["peak_mb_floor"] > 0
    assert [r["dtype"] for r in report["sampling"]] == ["fp32", "fp16"]
    for row in report["sampling"]:
        assert row["errors"] == {} and math.isfinite(row["ratio_stock"]), row
    table = out.with_suffix(".md").read_text()
    assert "| fp16 | 2 |" in table and "ours / stock" in table


def test_gpu_bench_refuses_cuda_without_a_gpu_and_says_what_to_do(host_path):
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the real run is what bench/gpu.py does; nothing to refuse
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu.py")], capture_output=True, text=True,
                          timeout=60, cwd=str(REPO_ROOT), env=dict(os.environ, COMFYUI_PATH=str(host_path)))
    assert proc.returncode == 2 and "--tiny" in proc.stderr
