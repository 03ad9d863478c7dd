"""The headless runner's command line (`scripts/train_run.py`); imports nothing of the host, so
the script can read it before ComfyUI is set up."""
from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train_run.py", description="Train a hypernetwork run file headless "
                                     "(launch with torchrun for several GPUs or machines).")
    parser.add_argument("run_file", type=Path, help="a .run.json written by Train Hypernetwork's export_run_file")
    parser.add_argument("--comfyui", type=Path, default=None,
                        help="the ComfyUI folder (default: $COMFYUI_PATH, or the folder the pack is installed in)")
    parser.add_argument("--hypernetwork-folder", type=Path, default=None,
                        help="write the run's files here (default: ComfyUI's first hypernetworks folder)")
    parser.add_argument("--custom-nodes", type=Path, action="append", default=[],
                        help="a custom-node folder to load, when the run's loader node comes from one (repeatable)")
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto",
                        help="torch.distributed backend (auto: nccl on CUDA, else gloo)")
    parser.add_argument("--collective-timeout", type=float, default=600.0,
                        help="seconds a rank waits for the others before it stops (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU (passed to ComfyUI as --cpu)")
    args, host_args = parser.parse_known_args(argv)
    args.host_args = host_args
    if not 0 < args.collective_timeout <= 86400:
        parser.error("--collective-timeout must be in (0, 86400] seconds")
    return args
