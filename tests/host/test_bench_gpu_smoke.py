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


def test_gpu_bench_runs_from_the_carried_host_with_plain_python3_and_no_venv(host_path, tmp_path):
    """The GPU machine's path: `bench.sh --prepare-gpu` copied the host's source into .host/ here;
    there `bash scripts/bench.sh --gpu` runs with the python3 on PATH, no COMFYUI_PATH, no venv and
    no registry (hostenv.py is never called)."""
    carried = tmp_path / "carried"
    prep = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "carry_host.py"), "--dest", str(carried)],
                          capture_output=True, text=True, timeout=120, cwd=str(REPO_ROOT),
                          env=dict(os.environ, COMFYUI_PATH=str(host_path)))
    assert prep.returncode == 0, prep.stderr[-2000:]
    assert (carried / "ComfyUI" / "comfy" / "model_management.py").is_file()
    assert (carried / "site" / "torchsde").is_dir() and not (carried / "ComfyUI" / ".git").exists()
    bin_dir = tmp_path / "bin"  # "python3 with torch installed", as on the GPU machine
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    (bin_dir / "python3").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "HN_PYTHON", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", HN_CARRIED_HOST=str(carried), OMP_NUM_THREADS="1")
    out = tmp_path / "gpu.json"
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "bench.sh"), "--gpu", "--tiny", "--dtypes", "fp32",
                           "--batches", "1", "--out", str(out), "--timeout", "800", "--budget", "850"],
                          capture_output=True, text=True, timeout=900, cwd=str(REPO_ROOT), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "missing: nothing" in proc.stderr
    report = json.loads(out.read_text())
    assert report["host"] == str(carried / "ComfyUI") and report["host_kind"] == "carried"
    assert report["failed"] == {} and [r["batch"] for r in report["train"]] == [1]
    assert math.isfinite(report["train"][0]["train_it_s"]) and "train it/s" in proc.stdout
