"""The GPU run: the real SD1.5 UNet shape (built in code, random weights) at 512 px (64x64
latents), batch 1 and 4, fp32 and fp16; train it/s, peak VRAM and the budget ratios, sampling
it/s against ComfyUI's stock HypernetworkLoader. Writes a JSON and a readable Markdown table.

    bash scripts/bench.sh --gpu                 # on a CUDA machine: under ten minutes on one GPU
    bash scripts/bench.sh --gpu --tiny          # smoke run on the CPU with a tiny UNet (~30 s)

One child process per dtype (bench/cases_model.py `gpu_point`), so each dtype's peak memory and
crash are its own. Ratios are as in bench/README.md; times are wall clock after a GPU sync.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import run_child  # noqa: E402

MB = 1024 * 1024

FULL = {"model_channels": 320, "sd15": True, "latent": 64, "batches": [1, 4], "warmup": 2, "repeats": 6,
        "sampling_steps": 10}
TINY = {"model_channels": 32, "sd15": False, "latent": 8, "batches": [1, 2], "warmup": 1, "repeats": 2,
        "sampling_steps": 2}
GOALS = {"floor": 1.05, "a1111": 0.80, "memory": 1.10, "stock": 0.95}


def train_rows(dtype: str, res: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for batch, p in res["train"].items():
        network_activations = p["saved"]["network"]
        memory_floor = p["peak_baseline"] + network_activations
        rows.append({
            "dtype": dtype, "batch": int(batch),
            "train_it_s": 1.0 / p["ours"], "frozen_unet_it_s": 1.0 / p["baseline"], "a1111_it_s": 1.0 / p["a1111"],
            "ratio_floor": p["ours"] / (p["baseline"] + p["network"]),
            "ratio_a1111": p["ours"] / p["a1111"],
            "peak_mb_ours": p["peak_ours"] / MB, "peak_mb_floor": p["peak_baseline"] / MB,
            "network_activations_mb": network_activations / MB,
            "network_grads_adamw_mb": (p["grad_bytes"] + p["optimizer_bytes"]) / MB,
            "ratio_memory": p["peak_ours"] / memory_floor,
            "ratio_memory_with_state": p["peak_ours"] / (memory_floor + p["grad_bytes"] + p["optimizer_bytes"]),
        })
    return rows


def sampling_row(dtype: str, res: dict[str, Any], steps: int) -> dict[str, Any]:
    s = res["sampling"]
    row = {"dtype": dtype, "steps": steps, "ours_it_s": steps / s["ours"], "none_it_s": steps / s["baseline"],
           "errors": s.get("errors", {})}
    if "stock" in s:
        row.update(stock_it_s=steps / s["stock"], ratio_stock=s["ours"] / s["stock"])
    return row


def mark(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} {'ok' if value <= goal else 'MISS'}"


def format_tables(report: dict[str, Any]) -> str:
    lines = [f"GPU bench: {report['device_name']}, {report['model']}, {report['date']}", "",
             "| dtype | batch | train it/s | frozen UNet it/s | A1111-style it/s | / floor (<= 1.05) | "
             "/ A1111 (<= 0.80) | peak MB | floor MB | network act. MB | / mem floor (<= 1.10) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["train"]:
        lines.append(f"| {r['dtype']} | {r['batch']} | {r['train_it_s']:.2f} | {r['frozen_unet_it_s']:.2f} | "
                     f"{r['a1111_it_s']:.2f} | {mark(r['ratio_floor'], GOALS['floor'])} | "
                     f"{mark(r['ratio_a1111'], GOALS['a1111'])} | {r['peak_mb_ours']:.0f} | {r['peak_mb_floor']:.0f} | "
                     f"{r['network_activations_mb']:.0f} | {mark(r['ratio_memory'], GOALS['memory'])} |")
    lines += ["", "| dtype | sampling it/s ours | stock HypernetworkLoader | no network | ours / stock (<= 0.95) |",
              "|---|---|---|---|---|"]
    for r in report["sampling"]:
        stock = f"{r['stock_it_s']:.2f}" if "stock_it_s" in r else "failed: " + r["errors"].get("stock", "?")[:80]
        lines.append(f"| {r['dtype']} | {r['ours_it_s']:.2f} | {stock} | {r['none_it_s']:.2f} | "
                     f"{mark(r.get('ratio_stock'), GOALS['stock'])} |")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SD1.5-sized GPU bench (see the module docstring).")
    parser.add_argument("--tiny", action="store_true", help="tiny UNet, small latents: a smoke run (CPU is fine)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None,
                        help="default: cuda, or cpu with --tiny")
    parser.add_argument("--dtypes", default="fp32,fp16", help="comma-separated: fp32, fp16")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,4; tiny 1,2)")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "gpu_results.json"),
                        help="JSON path; the table goes next to it as .md")
    parser.add_argument("--timeout", type=float, default=280.0, help="seconds per dtype child at most")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds for the whole run (default 450: under 8 minutes with start-up); a dtype "
                             "child gets what is left of it, at most --timeout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    device = opts.device or ("cpu" if opts.tiny else "cuda")
    cfg = dict(TINY if opts.tiny else FULL, device=device, threads=0)
    if opts.batches:
        cfg["batches"] = [int(b) for b in opts.batches.split(",")]
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("bench/gpu.py: no CUDA device here; use --tiny (or --device cpu) for a CPU run", file=sys.stderr)
            return 2
    report: dict[str, Any] = {"device": device, "date": time.strftime("%Y-%m-%d"), "train": [], "sampling": [],
                              "failed": {}, "config": cfg, "python": sys.executable,
                              "host": os.environ.get("COMFYUI_PATH", ""), "host_kind": os.environ.get("HN_HOST_KIND", ""),
                              "model": ("SD1.5 UNet shape at 512 px" if cfg["sd15"] else
                                        f"tiny UNet (model_channels {cfg['model_channels']}) at {cfg['latent'] * 8} px")}
    started = time.perf_counter()
    for dtype in opts.dtypes.split(","):
        try:
            left = opts.budget - (time.perf_counter() - started)
            if left < 30:
                raise RuntimeError(f"skipped: {left:.0f} s left of the {opts.budget:.0f} s budget")
            res = run_child("gpu_point", dict(cfg, dtype=dtype), timeout=min(opts.timeout, left))
        except (RuntimeError, OSError, ValueError) as exc:
            report["failed"][dtype] = str(exc)[-2000:]
            print(f"bench/gpu.py: {dtype} failed: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # noqa: BLE001 -- a timeout of one dtype must not lose the other's results
            report["failed"][dtype] = f"{type(exc).__name__}: {exc}"
            print(f"bench/gpu.py: {dtype} failed: {exc}", file=sys.stderr)
            continue
        report["device_name"] = res["device_name"]
        report["unet_params"] = res["unet_params"]
        report["train"] += train_rows(dtype, res)
        report["sampling"].append(sampling_row(dtype, res, cfg["sampling_steps"]))
    report.setdefault("device_name", device)
    report["seconds"] = time.perf_counter() - started
    table = format_tables(report)
    out = Path(opts.out)
    from hypernet.util.atomic import atomic_write_text

    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    print(f"\n{report['seconds']:.0f} s; JSON {out}, table {out.with_suffix('.md')}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
