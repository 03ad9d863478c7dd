"""Data parallel throughput: samples/s of the headless runner's train step with 1 and 2 ranks.

    bash scripts/bench.sh ... is not needed: run `"$HN_PYTHON" bench/ddp.py` (COMFYUI_PATH set as
    for the tests), or `--ranks 1,2,4 --batch 8 --steps 6`.

Each rank is a torchrun worker that builds the bench model (bench/cases_model.py: SD1-shaped
UNet, model_channels 64, 32x32 latents, an all-width 1,2,1 network) and runs the runner's own
step: its rows of the global batch through `TrainingModel.prediction_and_target(rows=...)`,
backward, one `TorchGradientSync.reduce` (gloo on the CPU), AdamW. One thread per rank, wall clock,
the median step after a warm-up, wall and CPU time. Prints one JSON line per world size and the
ratios: measured samples/s (wall: on a shared machine, noise) and the CPU work per sample, which
gives the speed-up on idle cores (one per rank).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def worker(batch: int, steps: int, model_channels: int) -> None:
    from bench.cases_model import PROMPT, BenchSetup

    setup = BenchSetup(model_channels)
    torch, hn, host = setup.torch, setup.hn, setup.host
    distributed = hn.train.distributed
    info = distributed.world_from_env()
    sync = None
    if info.world > 1:
        distributed.init_process_group(info, "gloo", 600)
        sync = distributed.TorchGradientSync(info)
    network = setup.network()
    params = list(network.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    with torch.inference_mode():
        cond, pooled = host.training.encode_prompt_for_training(setup.clip, PROMPT)
    x0 = torch.randn(batch, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    planned = hn.train.batches.PlannedBatch(0, 0, tuple(range(batch)))
    if sync is not None:
        planned = hn.train.batches.rank_share(planned, info.rank, info.world)
    rows = planned.rows if planned.rows is not None else slice(0, batch)
    times, cpu_times, reduce_times = [], [], []
    with torch.inference_mode(False), torch.enable_grad():
        model = host.training.TrainingModel(setup.model, setup.patch(network))
        network.train()
        conds = model.conditioning(cond.expand(batch, -1, -1)[rows].contiguous(), pooled, 256, 256)
        for step in range(steps + 1):
            started, cpu_started = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            prediction, target = model.prediction_and_target(x0, conds, torch.Generator().manual_seed(step),
                                                             rows=planned.rows)
            loss = torch.nn.functional.mse_loss(prediction, target) * planned.share
            loss.backward()
            reduced = time.perf_counter()
            if sync is not None:
                sync.reduce(params, float(loss))
            reduce_times.append(time.perf_counter() - reduced)
            optimizer.step()
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        model.close()
    cpu_all = torch.tensor([statistics.median(cpu_times[1:])], dtype=torch.float64)
    if sync is not None:  # the CPU time of one step summed over the ranks: the work a step costs
        import torch.distributed as dist
        dist.all_reduce(cpu_all)
    if info.rank == 0:
        step_s = statistics.median(times[1:])
        print(json.dumps({"ranks": info.world, "global_batch": batch, "step_s": round(step_s, 4),
                          "samples_per_s": round(batch / step_s, 3),
                          "cpu_s_per_step_all_ranks": round(float(cpu_all), 4),
                          "all_reduce_s": round(statistics.median(reduce_times[1:]), 5),
                          "all_reduce_bytes": 4 * (sum(p.numel() for p in params) + 1 + len(params)),
                          "unet_params": setup.unet_params}), flush=True)
    if sync is not None:
        import torch.distributed as dist
        dist.destroy_process_group()


def launch(ranks: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", HN_DDP_BENCH_WORKER="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               __file__, "--batch", str(args.batch), "--steps", str(args.steps),
               "--model-channels", str(args.model_channels)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{ranks} rank(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--batch", type=int, default=4, help="global batch (split over the ranks)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model-channels", type=int, default=64)
    args = parser.parse_args()
    if os.environ.get("HN_DDP_BENCH_WORKER"):
        worker(args.batch, args.steps, args.model_channels)
        return
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    results = [launch(int(r), args) for r in args.ranks.split(",")]
    for row in results:
        print(json.dumps(row), flush=True)
    base = results[0]
    for row in results[1:]:
        # on idle cores (one per rank) the wall time of a step is its CPU time per rank
        efficiency = base["cpu_s_per_step_all_ranks"] / row["cpu_s_per_step_all_ranks"]
        print(f"{row['ranks']} ranks vs {base['ranks']}: {row['samples_per_s'] / base['samples_per_s']:.2f}x samples/s "
              f"measured (wall, shared machine); CPU work per sample {1 / efficiency:.2f}x, so "
              f"{row['ranks'] * efficiency:.2f}x samples/s on {row['ranks']} idle cores (ceiling {row['ranks']}x)",
              flush=True)


if __name__ == "__main__":
    main()
