"""The whole Train node through the real server, step by step, against the in-process floor.

A ComfyUI server (the tests' own launcher, tests/support/server.py) runs with one math thread;
the bench queues Train prompts over HTTP and follows the websocket as a user's script does. At
every `hypernetwork.train.progress` event it reads the server process's CPU time (all its
threads: the executor, the web server and event sending) from /proc. A step's cost is the CPU the
server spent between two consecutive progress events; the first step is left out (warm-up), and
steps after which a checkpoint or a preview was made are counted apart, so that their cost shows.

The model is the bench UNet (bench/server_nodes: the same config and seed as BenchSetup), so the
floor (frozen UNet fwd+bwd + the network's own fwd+bwd+AdamW, case train_time) is measured on the
same model, batch and size in a child process with one thread too.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .harness import REPO_ROOT, host_path, load_support_module

CAPTION_TAGS = ["solo", "red circle", "white background", "simple background", "flat color", "centered",
                "no humans", "geometric", "high contrast", "minimalism", "shape", "round"]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dataset(folder: Path, count: int, size: int) -> None:
    """`count` shape images at `size` px, each captioned with 8 comma-separated tags."""
    datasets = load_support_module("datasets")
    datasets.make_shapes_dataset(folder, count=count, size=size)
    for index, caption in enumerate(sorted(folder.glob("*.txt"))):
        tags = [CAPTION_TAGS[(index + k) % len(CAPTION_TAGS)] for k in range(8)]
        caption.write_text(", ".join(tags), encoding="utf-8")


def train_graph(graphs: Any, name: str, args: dict[str, Any], variant: dict[str, Any]) -> dict:
    graph = graphs.Graph()
    loader = graph.add("HNBenchModelLoader", model_channels=args["model_channels"], seed=0)
    load = graph.add("HypernetworkLoadDataset", directory="bench", recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=0)
    widths = ", ".join(str(w) for w in args["widths"])
    create = graph.add("CreateHypernetwork", name=name, layer_structure="1, 2, 1", activation_func="relu",
                       weight_initialization="Normal", add_layer_norm=False, use_dropout=False,
                       dropout_structure="0, 0, 0", activate_output=False, last_layer_dropout=False,
                       sizes=widths, seed=0, save=False, overwrite=True)
    graph.add("TrainHypernetwork", model=[loader, 0], clip=[loader, 1], vae=[loader, 2], dataset=[load, 0],
              hypernetwork=[create, 0], hypernetwork_name="none", template="[filewords]", learning_rate="1e-5",
              steps=args["steps"], batch_size=args["batch"], grad_accumulation_steps=1, seed=0,
              save_every=variant["save_every"], resume=False, overwrite=True,
              preview_every=variant["preview_every"], preview_steps=args["preview_steps"],
              shuffle_tags=variant["shuffle_tags"], tag_dropout=variant["tag_dropout"],
              latent_sampling=variant["latent_sampling"])
    return graph.to_api()


VARIANTS = {
    "plain": {"shuffle_tags": False, "tag_dropout": 0.0, "latent_sampling": "once", "save_every": 0,
              "preview_every": 0},
    "guide": {"shuffle_tags": True, "tag_dropout": 0.1, "latent_sampling": "deterministic", "save_every": 0,
              "preview_every": 0},
}


def with_every(variant: dict, every: int, what: str) -> dict:
    return dict(variant, **{what: every})


def step_costs(marks: list[tuple[int, float, float]], special: set[int]) -> dict[str, list[float]]:
    """CPU and wall seconds per step from (step, cpu, wall) marks; a step that follows a step in
    `special` (a checkpoint or preview was made after it) goes to `after_special`."""
    out: dict[str, list[float]] = {"cpu": [], "wall": [], "after_special_cpu": [], "after_special_wall": []}
    for (step0, cpu0, wall0), (step1, cpu1, wall1) in zip(marks, marks[1:]):
        if step1 != step0 + 1:
            continue
        prefix = "after_special_" if step0 in special else ""
        out[prefix + "cpu"].append(cpu1 - cpu0)
        out[prefix + "wall"].append(wall1 - wall0)
    return out


def case_node_server(args: dict[str, Any]) -> dict[str, Any]:
    """Per-step CPU (and wall) seconds of the Train node through the server, per variant."""
    server_mod = load_support_module("server")
    graphs = load_support_module("graphs")
    root = Path(tempfile.mkdtemp(prefix="hn_bench_node_"))
    os.environ.update(OMP_NUM_THREADS=str(args.get("threads") or 1), MKL_NUM_THREADS=str(args.get("threads") or 1))
    layout = server_mod.ServerLayout(root)
    server = server_mod.ComfyServer(host_path(), os.environ.get("HN_PYTHON") or __import__("sys").executable, layout)
    layout.custom_nodes.mkdir(parents=True, exist_ok=True)
    (layout.custom_nodes / "hn_bench_nodes").symlink_to(REPO_ROOT / "bench" / "server_nodes", target_is_directory=True)
    results: dict[str, Any] = {}
    try:
        server.start(timeout=300)
        _dataset(layout.input / "bench", args["images"], args["latent"] * 8)
        every = args["every"]
        plan = dict(VARIANTS)
        plan["guide+save"] = with_every(VARIANTS["guide"], every, "save_every")
        plan["guide+preview"] = with_every(VARIANTS["guide"], every, "preview_every")
        order = list(plan)
        for round_index in range(args.get("rounds", 1)):
            for name in (order if round_index % 2 == 0 else list(reversed(order))):
                marks: list[tuple[int, float, float]] = []

                def on_event(event, marks=marks):
                    if event.get("type") == "hypernetwork.train.progress":
                        marks.append((int(event["data"]["step"]), _cpu_seconds(server.process.pid),
                                      time.perf_counter()))

                graph = train_graph(graphs, f"bench_{name.replace('+', '_')}_{round_index}", args, plan[name])
                started = time.perf_counter()
                server.run(graph, timeout=args.get("timeout", 900), on_event=on_event)
                total = time.perf_counter() - started
                special = set(range(every, args["steps"] + 1, every)) if name != "plain" and name != "guide" else set()
                costs = step_costs(marks, special)
                entry = results.setdefault(name, {"cpu": [], "wall": [], "after_special_cpu": [],
                                                  "after_special_wall": [], "queue_to_done": []})
                for key, values in costs.items():
                    entry[key] += values
                entry["queue_to_done"].append(total)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    summary: dict[str, Any] = {"samples": results}
    for name, entry in results.items():
        summary[name] = {key: statistics.median(values) for key, values in entry.items() if values}
    return summary


CASES = {"node_server": case_node_server}
