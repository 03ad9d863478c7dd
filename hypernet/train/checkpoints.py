"""A training run's folder: `<hypernetworks>/<name>/<name>-<step>.pt` + `.optim`, previews,
the loss CSV and the settings JSON; and finding the checkpoint to resume from.

Step names are honest: `<name>-500.pt` holds the network after 500 optimizer steps (A1111 saved
it one step earlier and named it 500). Old A1111 names still parse.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..network.fileio import load_hypernetwork, load_optimizer_state, save_hypernetwork, save_optimizer_state, short_hash
from ..network.module import Hypernetwork
from ..util.atomic import atomic_write_text
from ..util.names import safe_name
from .log import CSV_NAME

logger = logging.getLogger(__name__)

SETTINGS_NAME = "training_settings.json"
FINAL_RECORD_NAME = "final_file.json"  # which final `<name>.pt` this run folder wrote (hash), see is_own_final
PREVIOUS_PREFIX = "previous-"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    file_hash: str = ""  # the `.pt`'s short hash, when this run has just written it


@dataclass(frozen=True)
class Resumable:
    """The checkpoint to continue: its network, its optimizer state (None: a fresh optimizer, with
    `optimizer_note` saying why) and its file."""

    network: Hypernetwork
    optimizer_state: dict | None
    path: Path
    optimizer_note: str = ""


def architecture(network: Hypernetwork) -> dict[str, Any]:
    """The config fields that decide tensor shapes and module order (not name, seed or info)."""
    config = network.config
    return {"layer_structure": list(config.layer_structure), "activation_func": config.activation_func,
            "is_layer_norm": config.is_layer_norm, "dropout_structure": list(config.dropout_structure),
            "activate_output": config.activate_output, "sizes": sorted(config.sizes)}


class RunFolder:
    """The files of one network's training runs, under `<hypernetwork folder>/<name>/`."""

    def __init__(self, hypernetwork_folder: Path, name: str):
        self.name = safe_name(name, "hypernetwork name")
        self.root = Path(hypernetwork_folder) / self.name
        self._pattern = re.compile(rf"^{re.escape(name)}-(\d+)\.pt$")
        self._stepped = re.compile(rf"^{re.escape(name)}-(\d+)(?:\.pt|\.pt\.optim|\.png|-ema\.pt)$")

    def checkpoint_path(self, step: int) -> Path:
        return self.root / f"{self.name}-{step}.pt"

    def ema_path(self, step: int) -> Path:
        """The EMA weights saved beside checkpoint `step` (an ordinary A1111 file)."""
        return self.root / f"{self.name}-{step}-ema.pt"

    def best_path(self) -> Path:
        """A copy of the checkpoint with the lowest validation loss so far."""
        return self.root / f"{self.name}-best.pt"

    def preview_path(self, step: int) -> Path:
        return self.root / f"{self.name}-{step}.png"

    def checkpoints(self) -> list[Checkpoint]:
        """Every `<name>-<step>.pt` in the folder, in step order."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = self._pattern.match(path.name)
            if match and path.is_file():
                found.append(Checkpoint(int(match.group(1)), path))
        return sorted(found, key=lambda c: c.step)

    def save_checkpoint(self, network: Hypernetwork, optimizer_name: str, optimizer_state: Mapping) -> Checkpoint:
        """Write `<name>-<step>.pt` then its `.optim` (each atomically; the pair is valid once both exist)."""
        path = self.checkpoint_path(network.step)
        save_hypernetwork(network, path)
        file_hash = short_hash(path)  # hashed once: the `.optim` records it, a rollback point checks it
        save_optimizer_state(path, optimizer_name, optimizer_state, model_hash=file_hash)
        return Checkpoint(network.step, path, file_hash)

    def latest_resumable(self, like: Hypernetwork, max_step: int | None = None) -> Resumable | None:
        """The newest checkpoint with `like`'s architecture, loaded, with its `.optim` when valid.

        Checkpoints that fail to load or have another architecture are skipped with a warning,
        newest first. A checkpoint whose `.optim` is missing or stale (deleted, or a crash between
        the two writes) is still resumed, with a fresh optimizer and a note saying so.
        """
        wanted = architecture(like)
        for checkpoint in reversed(self.checkpoints()):
            if max_step is not None and checkpoint.step > max_step:
                continue
            try:
                network = load_hypernetwork(checkpoint.path)
            except (ValueError, FileNotFoundError) as exc:
                logger.warning("skipping checkpoint %s: %s", checkpoint.path, exc)
                continue
            if architecture(network) != wanted:
                logger.warning("skipping checkpoint %s: its layer layout differs from the network being trained",
                               checkpoint.path)
                continue
            optim = load_optimizer_state(checkpoint.path)
            if not optim.ok:
                logger.warning("resuming %s with a fresh optimizer: %s", checkpoint.path, optim.reason)
                return Resumable(network, None, checkpoint.path, optim.reason)
            return Resumable(network, optim.state_dict, checkpoint.path)
        return None

    def run_files(self) -> list[Path]:
        """The files a training run writes into the folder (checkpoints, `.optim`, previews, CSV,
        settings, final record); anything else a user put there is none of the run's business."""
        if not self.root.is_dir():
            return []
        own = {SETTINGS_NAME, FINAL_RECORD_NAME, CSV_NAME, self.best_path().name}
        return sorted(p for p in self.root.iterdir()
                      if (p.name in own or self._stepped.match(p.name)) and p.is_file() and not p.is_symlink())

    def files_after(self, step: int) -> list[Path]:
        """Checkpoints, `.optim` files and previews of steps after `step` (from a longer earlier run)."""
        return [p for p in self.run_files() if (m := self._stepped.match(p.name)) and int(m.group(1)) > step]

    def move_aside(self) -> Path | None:
        """Move every file of the run into a new `previous-N/` subfolder (never deletes or
        overwrites anything); returns that folder, or None when there was nothing to move."""
        files = self.run_files()
        if not files:
            return None
        number = 1
        while True:
            target = self.root / f"{PREVIOUS_PREFIX}{number}"
            try:
                target.mkdir()
                break
            except FileExistsError:
                number += 1
        for path in files:
            os.replace(path, target / path.name)  # same folder tree: a rename, never a copy
        logger.info("moved %d file(s) of the earlier run of %s into %s", len(files), self.name, target)
        return target

    def record_final(self, final_path: Path) -> None:
        """Remember which final file this run wrote, so that a later run may replace it."""
        atomic_write_text(self.root / FINAL_RECORD_NAME,
                          json.dumps({"file": final_path.name, "hash": short_hash(final_path)}, indent=2))

    def is_own_final(self, final_path: Path) -> bool:
        """True when `final_path` is, byte for byte, the final file this run folder recorded."""
        try:
            record = json.loads((self.root / FINAL_RECORD_NAME).read_text(encoding="utf-8"))
            return (isinstance(record, dict) and record.get("file") == final_path.name
                    and record.get("hash") == short_hash(final_path))
        except (OSError, ValueError):
            return False

    def write_settings(self, settings: Mapping[str, Any]) -> Path:
        return atomic_write_text(self.root / SETTINGS_NAME, json.dumps(settings, indent=2, sort_keys=True, default=str))
