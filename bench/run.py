"""The performance budget, measured as ratios against baselines taken in the same run.

    bash scripts/bench.sh              # every case (~10 minutes on 2 CPU cores)
    bash scripts/bench.sh --quick      # small sizes, a smoke test of the bench itself (~2 minutes)
    bash scripts/bench.sh --cases train,sampling

Prints a table and writes it to bench/results.json (a list of objects with the keys case, ours,
baseline, ratio, goal, pass). Every case runs in its own child process; see bench/README.md for
what each case measures and how.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import emit_result, median, median_interval, paired_ratios, run_child  # noqa: E402

logger = logging.getLogger("bench")

CASE_GROUPS = ("train", "memory", "realsize", "node", "sampling", "tagger", "preprocess", "load", "editor")
KB = 1024
MB = 1024 * 1024


@dataclass
class Row:
    case: str
    ours: float
    baseline: float
    ratio: float
    goal: str
    passed: bool
    spread: tuple[float, float] | None = None  # lowest and highest per-round ratio
    interval: tuple[float, float, float] | None = None  # the median's confidence interval: low, high, coverage
    sure: bool | None = None  # the whole interval on the same side of the goal as the median

    def to_dict(self) -> dict[str, Any]:
        out = {"case": self.case, "ours": round(self.ours, 6), "baseline": round(self.baseline, 6),
               "ratio": round(self.ratio, 4), "goal": self.goal, "pass": self.passed}
        if self.spread is not None:
            out.update(spread=[round(v, 4) for v in self.spread], sure=self.sure,
                       interval=[round(v, 4) for v in self.interval])
        return out


def at_most(limit: float) -> tuple[str, Callable[[float], bool]]:
    return f"<= {limit:.2f}", lambda ratio: ratio <= limit


def at_least(limit: float) -> tuple[str, Callable[[float], bool]]:
    return f">= {limit:.2f}", lambda ratio: ratio >= limit


def make_row(case: str, ours: float, baseline: float, goal: tuple[str, Callable[[float], bool]],
             ratios: list[float] | None = None) -> Row:
    """A budget row; with `ratios` (one per interleaved round) the ratio is their median and the
    row carries their spread and the median's 95% confidence interval: the verdict is sure when
    the whole interval lies on its side of the goal."""
    if ratios:
        ratio = float(statistics.median(ratios))
        passed = bool(goal[1](ratio))
        low, high, coverage = median_interval(ratios)
        return Row(case, ours, baseline, ratio, goal[0], passed, (min(ratios), max(ratios)), (low, high, coverage),
                   bool(goal[1](low)) == passed and bool(goal[1](high)) == passed)
    ratio = ours / baseline if baseline else float("inf")
    return Row(case, ours, baseline, ratio, goal[0], bool(goal[1](ratio)))


# ------------------------------------------------------------------ settings


def settings(quick: bool) -> dict[str, Any]:
    """Sizes and repeat counts; --quick shrinks everything to check the bench itself runs."""
    if quick:
        return {"model": {"model_channels": 32, "latent": 16, "warmup": 1, "repeats": 2},
                "sampling_steps": 2, "tagger": {"size": 224, "batch": 2, "images": 4, "image_width": 512,
                                                "image_height": 384, "repeats": 2, "standin_width": 32},
                "preprocess": {"images": 4, "image_width": 768, "image_height": 512, "repeats": 1},
                "load": (1_000, 10_000), "load_rounds": 2}
    return {"model": {"model_channels": 64, "latent": 32, "warmup": 1, "repeats": 5},
            "sampling_steps": 4, "tagger": {"size": 448, "batch": 4, "images": 16, "image_width": 1024,
                                            "image_height": 768, "repeats": 25, "standin_width": 256},
            "preprocess": {"images": 12, "image_width": 1024, "image_height": 768, "repeats": 3},
            "load": (10_000, 100_000), "load_rounds": 5}


# ------------------------------------------------------------------ cases


def bench_train(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    rows = []
    for batch in cfg.get("train_batches", (1, 2)):
        args = dict(cfg["model"], batch=batch, clock=opts.clock, flops=batch == 2 and opts.device == "cpu")
        res = run_child("train_time", args, threads=opts.threads)
        unit = f"{opts.clock} s"
        rows.append(make_row(f"train step / (frozen UNet fwd+bwd + network's own fwd+bwd), batch {batch} ({unit})",
                             res["ours"], res["floor"], at_most(1.05)))
        rows.append(make_row(f"train step / A1111-style (no memo), batch {batch} ({unit})",
                             res["ours"], res["a1111"], at_most(0.80)))
        notes.append(f"train batch {batch}: ours {res['ours']:.3f} s, frozen UNet fwd+bwd {res['baseline']:.3f} s, "
                     f"network's own fwd+bwd+AdamW {res['network']:.3f} s, A1111-style {res['a1111']:.3f} s; "
                     f"ours / frozen UNet alone {res['ours'] / res['baseline']:.2f}")
        if "flops" in res:
            flops = res["flops"]
            notes.append(f"bench UNet: {res['unet_params'] / 1e6:.1f} M parameters, attention widths "
                         f"{res['widths']}; hypernetwork 1,2,1 on all of them: "
                         f"{res['hypernetwork_params'] / 1e6:.2f} M parameters")
            notes.append(f"train step FLOPs (torch FlopCounterMode, batch {batch}): "
                         + ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in flops.items())
                         + f"; ours / (baseline + network) {flops['ours'] / (flops['baseline'] + flops['network']):.2f}")
    return rows


def memory_floor(base: dict, ours: dict) -> tuple[float, float]:
    """(floor + the network's saved activations, the same + its gradients and AdamW state)."""
    activations = base["growth"] + ours["saved"]["network"]
    return activations, activations + ours["grad_bytes"] + ours["optimizer_bytes"]


def memory_breakdown(base: dict, ours: dict) -> list[str]:
    """Where ours' peak goes beyond the floor, item by item (bytes and share of the extra)."""
    extra = ours["growth"] - base["growth"]
    items = [("network's saved activations", ours["saved"]["network"]),
             ("network gradients", ours["grad_bytes"]),
             ("AdamW state (exp_avg, exp_avg_sq)", ours["optimizer_bytes"]),
             ("memo (context K/V outputs kept)", ours["memo_bytes"]),
             ("UNet saved activations, ours - baseline", ours["saved"]["unet"] - base["saved"]["unet"])]
    rest = extra - sum(b for _, b in items)
    lines = [f"| {name} | {b / MB:.1f} | {b / extra:.0%} |" for name, b in items + [("rest (transient buffers, allocator)", rest)]]
    return ["| item | MB | share of the extra |", "|---|---|---|"] + lines + [f"| extra over the floor | {extra / MB:.1f} | 100% |"]


def bench_memory(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    args = dict(cfg["model"], batch=cfg.get("memory_batch", 2), steps=2)
    measured = {}
    for variant in ("baseline", "ours"):
        measured[variant] = run_child("train_memory", dict(args, variant=variant), threads=opts.threads,
                                      exact_rss=True)
        if not measured[variant]["valid"]:
            notes.append(f"train memory {variant}: cannot reset the RSS high-water mark here (no "
                         "/proc/self/clear_refs); the figure includes building the model")
    base, ours = measured["baseline"], measured["ours"]
    activations, with_state = memory_floor(base, ours)
    notes.append(f"train memory before the steps: baseline {base['before'] / MB:.0f} MB, ours {ours['before'] / MB:.0f} MB "
                 f"(a copy of the model made for training: {ours['copy_bytes'] / MB:.0f} MB); floor (frozen UNet fwd+bwd) {base['growth'] / MB:.1f} MB, "
                 f"ours {ours['growth'] / MB:.1f} MB; ours / (floor + network activations, gradients and AdamW state) "
                 f"{ours['growth'] / with_state:.2f}")
    notes.append("train memory, where ours' extra over the floor goes:\n" + "\n".join(memory_breakdown(base, ours)))
    notes.append(f"train memory: ours / (floor + network's saved activations only) {ours['growth'] / activations:.2f} "
                 "(the earlier row: it left the network's gradients and AdamW state out of the reference)")
    return [make_row(f"train peak memory / (floor + network's activations, gradients, AdamW state), batch "
                     f"{args['batch']} (MB)", ours["growth"] / MB, with_state / MB, at_most(1.10))]


def realsize_breakdown(floor: dict, step: dict, node: dict) -> list[str]:
    """Where the node's peak goes beyond the floor at real size, item by item."""
    extra = node["growth"] - floor["growth"]
    items = [("network's saved activations", step["saved"]["network"]),
             ("network gradients", step["grad_bytes"]),
             ("AdamW state (exp_avg, exp_avg_sq)", step["optimizer_bytes"]),
             ("the run's trainable copy of the network (the incoming one is never trained in place)",
              node["network_param_bytes"]),
             ("memo (context K/V outputs kept)", step["memo_bytes"]),
             ("UNet saved activations, step - floor", step["saved"]["unet"] - floor["saved"]["unet"]),
             ("the rest of a train step (step - floor - the items above)",
              step["growth"] - floor["growth"] - step["saved"]["network"] - step["grad_bytes"]
              - step["optimizer_bytes"] - step["memo_bytes"]
              - (step["saved"]["unet"] - floor["saved"]["unet"]))]
    rest = extra - sum(b for _, b in items)
    items.append(("the rest: the node beyond a train step (a checkpoint saved every step, the rollback point, "
                  "caches, VAE/CLIP encoding); negative when the items above do not all peak together "
                  "(backward frees activations while it allocates the gradients)", rest))
    lines = [f"| {name} | {b / MB:.1f} | {b / extra:.0%} |" for name, b in items]
    return (["| item | MB | share of the extra |", "|---|---|---|"] + lines
            + [f"| extra over the floor | {extra / MB:.1f} | 100% |"])


def bench_realsize(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    """SD1.5-sized checkpoint through Load Checkpoint, trained at 256 px on the CPU (see cases_realsize)."""
    if opts.quick:
        notes.append("realsize: skipped in --quick (it builds and loads a 2 GB SD1.5-sized checkpoint)")
        return []
    folder = Path(opts.checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    built = run_child("realsize_build", {"folder": str(folder)}, timeout=1800)
    args = {"path": built["path"], "batch": 1, "latent": 32, "steps": 2, "threads": opts.threads}
    measured = {v: run_child("realsize_memory", dict(args, variant=v), threads=opts.threads, exact_rss=True,
                             timeout=1800) for v in ("floor", "step", "node")}
    floor, step, node = measured["floor"], measured["step"], measured["node"]
    network_work = step["saved"]["network"] + step["grad_bytes"] + step["optimizer_bytes"]
    notes.append(f"realsize: {Path(built['path']).name} ({built['bytes'] / MB:.0f} MB fp16 file, UNet "
                 f"{floor['unet_params'] / 1e6:.0f} M parameters, {floor['unet_bytes'] / MB:.0f} MB loaded in fp32; "
                 f"RSS with the loaded checkpoint {floor['loaded_rss'] / MB:.0f} MB). Peak above the loaded model at "
                 f"256 px, batch 1: floor (frozen UNet fwd+bwd) {floor['growth'] / MB:.0f} MB, train step "
                 f"{step['growth'] / MB:.0f} MB, the Train node {node['growth'] / MB:.0f} MB; a copy of the model "
                 f"(the earlier way) would add {floor['unet_bytes'] / MB:.0f} MB; this run's copy: "
                 f"{step['copy_bytes'] / MB:.0f} MB")
    notes.append("realsize, where the node's extra over the floor goes:\n"
                 + "\n".join(realsize_breakdown(floor, step, node)))
    if node.get("phases"):
        notes.append("realsize, the node's peak above the loaded model per phase: "
                     + "; ".join(f"{name} {value / MB:.0f} MB" for name, value in node["phases"].items()))
    denominator = (floor["growth"] + network_work) / MB
    return [make_row("SD1.5 file, Train node peak above the loaded model / (frozen UNet fwd+bwd + network's "
                     "activations, gradients, AdamW state), 256 px (MB)", node["growth"] / MB, denominator,
                     at_most(1.10)),
            make_row("SD1.5 file, train step peak above the loaded model / the same (MB)", step["growth"] / MB,
                     denominator, at_most(1.10))]


def bench_node(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    """The whole Train node through the server, per step, vs the floor on the same model (cases_node)."""
    model = cfg["model"]
    node_args = {"model_channels": model["model_channels"], "latent": model["latent"], "batch": 1,
                 "steps": 9 if opts.quick else 13, "every": 4, "preview_steps": 4, "images": 8,
                 "threads": opts.threads or 1, "widths": [], "rounds": 1}
    floor = run_child("train_time", dict(model, batch=1, clock="cpu"), threads=opts.threads or 1)
    node_args["widths"] = floor["widths"]
    res = run_child("node_server", node_args, timeout=3600)
    per_step = {name: res[name]["cpu"] for name in ("plain", "guide")}
    floor_s = floor["floor"]
    notes.append(f"node through the server (CPU s per step, steps 2..{node_args['steps']}, batch 1, "
                 f"{model['latent'] * 8} px, bench UNet): plain {per_step['plain']:.3f}, guide's settings "
                 f"(shuffle_tags, tag_dropout 0.1, deterministic latents) {per_step['guide']:.3f}; in-process: "
                 f"train step {floor['ours']:.3f}, floor (frozen UNet fwd+bwd {floor['baseline']:.3f} + network "
                 f"{floor['network']:.3f}) {floor_s:.3f}")
    parts = [("the node around a train step (data, events, CSV, loop)", per_step["plain"] - floor["ours"]),
             ("tag shuffle + dropout + deterministic latents (a new prompt to encode each step)",
              per_step["guide"] - per_step["plain"])]
    for name, label in (("guide+save", "a checkpoint save (.pt + .optim + CSV)"),
                        ("guide+preview", f"a preview ({node_args['preview_steps']} sampling steps + decode + PNG)")):
        after = res[name].get("after_special_cpu")
        if after is not None:
            cost = after - res[name]["cpu"]
            parts.append((f"{label}, once", cost))
            parts.append((f"{label}, amortised at every {node_args['every']} steps", cost / node_args["every"]))
    notes.append("node, what each part costs per step (CPU s; share of the floor):\n"
                 + "\n".join(["| part | s | of floor |", "|---|---|---|"]
                              + [f"| {label} | {value:.3f} | {value / floor_s:.0%} |" for label, value in parts]))
    steps = res["samples"]["guide"]["cpu"]  # the spread is the step-to-step spread of the node's cost
    return [make_row("Train node via the server, guide's settings, per step (steps 2.., no saves/previews) / "
                     "(frozen UNet fwd+bwd + network's own work) (cpu s)", per_step["guide"], floor_s, at_most(1.10),
                     ratios=[value / floor_s for value in steps])]


def bench_sampling(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    args = dict(cfg["model"], batch=1, steps=cfg["sampling_steps"], clock=opts.clock)
    res = run_child("sampling", args, threads=opts.threads)
    for key in ("ours", "stock", "ours_context_only"):
        notes.append(f"sampling {key}: {res[key]:.3f} s ({res[key] / res['baseline']:.2f} of no hypernetwork)")
    return [make_row(f"sampling ApplyHypernetwork / stock HypernetworkLoader, same file, euler "
                     f"{cfg['sampling_steps']} steps cfg 7 ({opts.clock} s)", res["ours"], res["stock"], at_most(0.95))]


def bench_tagger(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    args = dict(cfg["tagger"], clock="wall", threads=opts.threads)
    res = run_child("tagger", args, threads=opts.threads)
    t = cfg["tagger"]
    notes.append(f"tagger: stand-in model {res['standin_gflops_per_image']:.1f} GFLOPs per image at "
                 f"{t['size']} px; the pack's preprocessing of a {t['image_width']}x{t['image_height']} image: "
                 f"{res['preprocess_ms_per_image']:.1f} ms (wall, one thread). The wall-clock row shows the "
                 "prefetch only when a core is free; the CPU-time row is the work the node adds")
    name = f"tagger through the node / bare session, batch {t['batch']} at {t['size']} px (images/s"
    rounds = res["rounds"]
    # images/s is the inverse of seconds: ours/bare in speed = bare/ours in time, round by round
    return [make_row(f"{name}, wall)", res["ours"], res["baseline"], at_least(0.95),
                     ratios=paired_ratios(rounds["baseline"], rounds["ours"])),
            make_row(f"{name}, CPU time)", res["ours@cpu"], res["baseline@cpu"], at_least(0.95),
                     ratios=paired_ratios(rounds["baseline@cpu"], rounds["ours@cpu"]))]


def bench_preprocess(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    workers = 2
    res = run_child("preprocess", dict(cfg["preprocess"], workers=workers))
    speedup = res["ours"] / res["baseline"]
    notes.append(f"preprocess: {res['cpu_count']} CPUs, load average before/after "
                 f"{res['load_average'][0]:.1f}/{res['load_average'][1]:.1f}; {workers} workers vs 1: "
                 f"{speedup:.2f}x; control (sha256 on {workers} threads vs 1, same turns) {res['ceiling']:.2f}x")
    return [make_row(f"preprocess speed-up {workers} workers / 1, as a share of the control's (wall)",
                     speedup, res["ceiling"], at_least(0.85))]


def bench_load(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    small, large = cfg["load"]
    factor = large // small
    with tempfile.TemporaryDirectory(prefix="hn_bench_load_") as tmp:
        folders = {}
        for n in (small, large):
            folders[n] = os.path.join(tmp, f"n{n}")
            made = run_child("make_files", {"folder": folders[n], "count": n})
            notes.append(f"LoadDataset: wrote {n} PNGs ({made['png_bytes']} bytes each) + captions "
                         f"in {made['seconds']:.1f} s")
        scaling = run_child("load_scaling", {"small": folders[small], "large": folders[large], "factor": factor,
                                             "rounds": cfg["load_rounds"]}, timeout=3600)
        memory = {n: run_child("load_dataset", {"folder": folders[n], "mode": "memory"}) for n in (small, large)}
    ratios = paired_ratios(scaling["large"], scaling["small_times_factor"])
    notes.append(f"LoadDataset {large} files: {median(scaling['large']):.2f} s CPU per scan; {factor} x {small}: "
                 f"{median(scaling['small_times_factor']):.2f} s; {len(ratios)} interleaved rounds, per-round "
                 f"ratios {', '.join(f'{r:.2f}' for r in ratios)}")
    for n in (small, large):
        notes.append(f"LoadDataset {n} files: tracemalloc retained {memory[n]['retained_per_item']:.0f} B/item, "
                     f"peak {memory[n]['peak_per_item']:.0f} B/item")
    scale = make_row(f"LoadDataset {large} files vs {factor} x {small} (CPU s)", median(scaling["large"]),
                     median(scaling["small_times_factor"]), at_most(1.20), ratios=ratios)
    per_item = memory[large]["retained_per_item"]
    mem = Row(f"LoadDataset memory per item at {large} vs {small} (bytes)", per_item,
              memory[small]["retained_per_item"], per_item / memory[small]["retained_per_item"],
              "< 2048 B/item", per_item < 2 * KB)
    return [scale, mem]


def bench_editor(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    """Dataset editor (bench/cases_editor.py): list + tag counts and a saved bulk replace."""
    count = 1_000 if opts.quick else 10_000
    res = run_child("editor", {"count": count, "repeats": 2 if opts.quick else 13, "clock": opts.clock},
                    timeout=3600)
    notes.append(f"editor: first (cold) list of {count} captions {res['list_cold_ours']:.3f} s vs bare read "
                 f"{res['list_cold_baseline']:.3f} s ({res['list_cold_ours'] / res['list_cold_baseline']:.2f}x)")
    samples = res["samples"]
    return [make_row(f"editor list + tag counts, {count} captions (s)", res["list_ours"], res["list_baseline"],
                     at_most(1.5), ratios=paired_ratios(samples["list"]["ours"], samples["list"]["baseline"])),
            make_row(f"editor bulk replace saved, {count} captions (s)", res["bulk_ours"], res["bulk_baseline"],
                     at_most(1.5), ratios=paired_ratios(samples["bulk"]["ours"], samples["bulk"]["baseline"]))]


def bench_scaling(cfg: dict, opts: argparse.Namespace, notes: list[str]) -> list[Row]:
    """Not a budget row: how an `ours` train step scales with resolution and batch (for README)."""
    base = cfg["model"]["latent"]
    points = [(1, base), (1, base * 3 // 2), (1, base * 2), (2, base), (4, base)]
    lines = ["| image px | batch | step (cpu s) | step (wall s) | GFLOPs | peak above model (MB) |",
             "|---|---|---|---|---|---|"]
    for batch, latent in points:
        res = run_child("train_point", dict(cfg["model"], variant="ours", batch=batch, latent=latent, steps=2),
                        threads=opts.threads, exact_rss=True)
        lines.append(f"| {latent * 8} | {batch} | {res['cpu']:.2f} | {res['wall']:.2f} | {res['flops'] / 1e9:.1f} | "
                     f"{res['growth'] / MB:.0f} |")
    notes.append("train step scaling (ours, bench UNet):\n" + "\n".join(lines))
    paper = run_child("paper_flops", {"latent": 64})
    for label in ("train", "sample"):
        base = paper[f"{label}_baseline"]
        notes.append(f"SD1.5-shaped UNet at 512 px ({'train step, batch 1' if label == 'train' else 'one cfg model call'}"
                     f", counted on the meta device): baseline {base / 1e12:.2f} TFLOPs"
                     + "".join(f", {k} x{paper[f'{label}_{k}'] / base:.3f}" for k in ("ours",)))
    notes.append(f"SD1.5 1,2,1 network on 320/640/1280/768: {paper['hypernetwork_params'] / 1e6:.1f} M parameters")
    return []


GROUPS: dict[str, Callable[[dict, argparse.Namespace, list[str]], list[Row]]] = {
    "train": bench_train, "memory": bench_memory, "sampling": bench_sampling,
    "tagger": bench_tagger, "preprocess": bench_preprocess, "load": bench_load, "scaling": bench_scaling,
    "editor": bench_editor, "realsize": bench_realsize, "node": bench_node,
}


# ------------------------------------------------------------------ output


def _verdict(row: Row) -> str:
    text = "yes" if row.passed else "NO"
    return text if row.sure is not False else f"{text} (not sure: the interval straddles the goal)"


def _interval(row: Row) -> str:
    if row.interval is None:
        return ""
    low, high, coverage = row.interval
    return f"{low:.2f}-{high:.2f} ({coverage:.0%})"


def format_table(rows: list[Row]) -> str:
    header = ("case", "ours", "baseline", "ratio", "spread", "median's interval", "goal", "pass")
    body = [(r.case, f"{r.ours:.4g}", f"{r.baseline:.4g}", f"{r.ratio:.2f}",
             f"{r.spread[0]:.2f}-{r.spread[1]:.2f}" if r.spread else "", _interval(r), r.goal, _verdict(r))
            for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in [header] + body]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_results(rows: list[Row], path: Path) -> None:
    from hypernet.util.atomic import atomic_write_text

    atomic_write_text(path, json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the pack's performance budget as ratios.")
    parser.add_argument("--quick", action="store_true", help="small sizes: check that the bench runs (~2 min)")
    parser.add_argument("--cases", default=",".join(CASE_GROUPS),
                        help=f"comma-separated subset of {','.join(CASE_GROUPS)} (default: all), or 'scaling' "
                             "(not in the default run): train step time and memory vs resolution and batch")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time measure for the ratio cases: this process's CPU time (default; robust "
                             "on a shared machine) or wall time; preprocess always uses wall time")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and onnxruntime in the ratio cases (default 1; 0 = library default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the model cases (train, memory, sampling, scaling) run; on cuda, memory is "
                             "the CUDA allocator's peak. The data cases always run on the CPU")
    parser.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32", help="the UNet's weights dtype")
    parser.add_argument("--sd15", action="store_true",
                        help="model cases on the real SD1.5 UNet shape (860 M parameters, built in code); "
                             "see also bench/gpu.py")
    parser.add_argument("--checkpoint-dir", default=str(REPO_ROOT / ".cache" / "bench"),
                        help="where the realsize case keeps its SD1.5-sized checkpoint (built once, ~2 GB)")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results.json"), help="where to write the JSON")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "ARGS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(GROUPS)
    if unknown:
        parser.error(f"--cases: unknown {sorted(unknown)}; choose from {','.join(GROUPS)}")
    return args


def child_main(case: str, args_json: str) -> None:
    from bench import cases_data, cases_editor, cases_model, cases_node, cases_realsize

    cases = {**cases_model.CASES, **cases_data.CASES, **cases_editor.CASES, **cases_realsize.CASES,
             **cases_node.CASES}
    if case not in cases:
        raise SystemExit(f"unknown bench case {case!r}; one of {sorted(cases)}")
    args = json.loads(args_json)
    if args.get("threads") and (case in cases_model.CASES or case in cases_realsize.CASES):
        import torch

        torch.set_num_threads(int(args["threads"]))
    emit_result(cases[case](args))


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    if opts.child:
        child_main(*opts.child)
        return 0
    cfg = settings(opts.quick)
    cfg["model"].update(threads=opts.threads, device=opts.device, dtype=opts.dtype, sd15=opts.sd15)
    if opts.sd15:
        cfg["model"]["latent"] = 64  # 512 px
    rows: list[Row] = []
    notes: list[str] = []
    started = time.perf_counter()
    for group in opts.cases.split(","):
        logger.info("running %s ...", group)
        group_started = time.perf_counter()
        try:
            rows += GROUPS[group](cfg, opts, notes)
        except RuntimeError as exc:  # a failed child: report it and go on with the other cases
            logger.error("%s failed: %s", group, exc)
            notes.append(f"{group}: FAILED, see the log above")
        logger.info("%s done in %.0f s", group, time.perf_counter() - group_started)
    print(format_table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    print(f"- total {time.perf_counter() - started:.0f} s; clock {opts.clock}, threads {opts.threads or 'default'}, "
          f"{time.strftime('%Y-%m-%d')}")
    write_results(rows, Path(opts.out))
    return 1 if any("FAILED" in n for n in notes) else 0  # a missed goal is a result, a crash is not


if __name__ == "__main__":
    raise SystemExit(main())
