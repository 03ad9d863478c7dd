"""The headless runner: train a run file (exported by Train Hypernetwork) without a server or a
browser, on one process or many under torchrun. Started by `scripts/train_run.py`, which sets
up the host first.

Every rank loads the checkpoint with the run's loader node (its file hash checked), encodes the
dataset and runs the node's own `TrainingSession`; rank 0 decides where to start (resume) and
sends that to the others, and writes every file. With one process this is the node's run, step
for step. Exit codes: 0 finished, 1 error or lost rank, 3 diverged, 130 stopped by Ctrl-C.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..hypernet.network.base_model_hash import sha256_file
from ..hypernet.network.fileio import load_hypernetwork
from ..hypernet.network.module import Hypernetwork
from ..hypernet.train import distributed
from ..hypernet.train.distributed import HeadlessRole, LostRankError, TorchGradientSync, WorldInfo
from ..hypernet.train.run_file import RunFile
from ..hypernet.train.trainer import copy_network
from ..hypernet.util.names import safe_name
from . import network_files
from .host import feedback, loaders, paths
from .training_session import TrainingSession

EXIT_ERROR, EXIT_DIVERGED, EXIT_STOPPED = 1, 3, 130
TRAIN_CLASS = "TrainHypernetwork"
REPEAT_WINDOW_S = 2.0
# Trainer methods that write a checkpoint + .optim: a SIGTERM waits until they return
WRITING_FRAMES = frozenset({"_save_checkpoint", "_cancel", "_finish"})


class StopFlag:
    """Ctrl-C asks every rank to stop after the current step (rank 0 saves a checkpoint); SIGTERM,
    which torchrun sends to the other ranks when one fails, stops this rank at once (after a
    checkpoint write in progress, so the pair on disk is whole)."""

    def __init__(self, rank: int):
        self.rank = rank
        self.requested = False
        self.requested_at = 0.0
        self.terminated = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._terminate)

    def _interrupt(self, signum, frame) -> None:
        now = time.monotonic()
        if self.requested:
            # torchrun forwards the terminal's Ctrl-C to its workers: a repeat within a moment is that copy
            if now - self.requested_at > REPEAT_WINDOW_S:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            return
        self.requested, self.requested_at = True, now
        print(f"[rank {self.rank}] Ctrl-C: stopping after this step (press again to stop at once)",
              file=sys.stderr, flush=True)

    def _terminate(self, signum, frame) -> None:
        self.terminated = True
        while frame is not None:
            if frame.f_code.co_name in WRITING_FRAMES:
                return  # finish writing the checkpoint pair first; `check` raises right after
            frame = frame.f_back
        self.check()

    def check(self) -> None:
        if self.terminated:
            raise LostRankError(f"rank {self.rank}: stopped by SIGTERM (torchrun stops every rank when one fails; "
                                "see that rank's message). The last checkpoint is intact: run the same command "
                                "to resume")

    def should_stop(self, sync: TorchGradientSync | None) -> bool:
        """Checked by every rank at the start of each step (a collective: all ranks stop together)."""
        self.check()
        return sync.any(self.requested) if sync is not None else self.requested


def check_hash(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"run file: {what} {path} has changed since the export (sha256 {actual[:10]}..., the run "
                         f"file says {expected[:10]}...); export the run file again")


def start_network(run: RunFile, run_file: Path) -> tuple[Hypernetwork, Path | None]:
    """The network the node would start from, and its source file (continued with its `.optim`)."""
    source = run.network
    if source.file is not None:
        path = network_files.resolve_file(source.file)
        check_hash(path, source.sha256, "network.file")
        network = copy_network(load_hypernetwork(path))
        network.rename(safe_name(path.stem, "hypernetwork_name"))
        return network, path
    path = run_file.resolve().parent / source.start_file
    if not path.is_file():
        raise FileNotFoundError(f"run file: network.start_file {source.start_file} is missing next to {run_file}; "
                                "copy it along with the run file")
    check_hash(path, source.sha256, "network.start_file")
    network = copy_network(load_hypernetwork(path))
    network.rename(run.name)
    return network, None


def load_base_model(run: RunFile, custom_nodes: list[Path]) -> tuple:
    loader = run.base_model
    if loader.file_input is not None:
        found = loaders.loader_model_file(loader.inputs)
        if found is None:
            raise ValueError(f"run file: base_model.inputs.{loader.file_input} names no model file")
        check_hash(found[1], loader.sha256, f"base model ({loader.file_input})")
    extra = {}
    for folder in custom_nodes:
        extra.update(loaders.load_custom_nodes(folder))
    return loaders.run_loader_node(loader.class_type, loader.inputs, loader.outputs, extra)


def check_dataset(run: RunFile) -> None:
    missing = [item.path for item in run.dataset.items if not Path(item.path).is_file()]
    if missing:
        raise FileNotFoundError(f"run file: {len(missing)} dataset image(s) are missing on this machine, e.g. "
                                f"{missing[0]}; every machine needs the dataset at the same path")


def graph_of(run: RunFile) -> tuple[dict, str]:
    """The part of the workflow the node saw (loader -> Train), so the files get the same sd_checkpoint."""
    loader = run.base_model
    train_inputs = {k: [loader.node_id, index] for k, index in loader.outputs.items()}
    prompt = {loader.node_id: {"class_type": loader.class_type, "inputs": dict(loader.inputs)},
              run.train_node_id: {"class_type": TRAIN_CLASS, "inputs": train_inputs}}
    return prompt, run.train_node_id


class ConsoleProgress:
    """A tqdm bar on rank 0 for the host's progress updates."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None or self.bar.total != total:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc="training", unit="step", file=sys.stderr)
        self.bar.update(max(0, done - self.bar.n))


def run(args: argparse.Namespace, info: WorldInfo, device: torch.device) -> int:
    run_file = RunFile.from_json(args.run_file.read_bytes())
    if args.hypernetwork_folder is not None:
        paths.use_hypernetwork_folder(args.hypernetwork_folder.resolve())
    flag = StopFlag(info.rank)
    flag.install()
    sync = None
    if info.world > 1:
        backend = args.backend if args.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
        distributed.init_process_group(info, backend, args.collective_timeout)
        sync = TorchGradientSync(info, device)
    scratch = None if info.writer else Path(tempfile.mkdtemp(prefix=f"hn-rank{info.rank}-"))
    try:
        network, source_file = start_network(run_file, args.run_file)
        check_dataset(run_file)
        model, clip, vae = load_base_model(run_file, args.custom_nodes)
        role = HeadlessRole(folder=scratch or paths.default_hypernetwork_folder(), writer=info.writer,
                            should_stop=lambda: flag.should_stop(sync), sync=sync)
        if info.writer:
            feedback.set_console_progress(ConsoleProgress())
        with torch.inference_mode():  # as the host runs nodes
            session = TrainingSession(model=model, clip=clip, vae=vae, dataset=run_file.dataset, network=network,
                                      source_file=source_file, config=run_file.config, resume=run_file.resume,
                                      preview=run_file.preview, node_id=None, overwrite=run_file.overwrite,
                                      graph=graph_of(run_file), headless=role)
            outcome = session.run()
        flag.check()
        if info.writer:
            print(outcome.report, flush=True)
        if outcome.result.stopped == "cancelled":
            print(f"[rank {info.rank}] stopped at step {outcome.result.network.step} by Ctrl-C; run the same "
                  "command to resume", file=sys.stderr, flush=True)
            return EXIT_STOPPED
        return EXIT_DIVERGED if outcome.result.stopped == "diverged" else 0
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)  # this rank's own temp folder, made above


def main(args: argparse.Namespace, device: torch.device) -> int:
    info = distributed.world_from_env()
    logging.basicConfig(level=logging.INFO if info.writer else logging.WARNING,
                        format=f"[rank {info.rank}] %(levelname)s %(message)s")
    try:
        return run(args, info, device)
    except LostRankError as exc:
        print(f"[rank {info.rank}] {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"[rank {info.rank}] error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    finally:
        if torch.distributed.is_initialized():
            try:
                torch.distributed.destroy_process_group()
            except Exception:  # the group may already be broken by a lost rank
                pass
