"""A training run's folder: `<hypernetworks>/<name>/<name>-<step>.pt` + `.optim`, previews,
the loss CSV and the settings JSON; and finding the checkpoint to resume from.

Step names are honest: `<name>-500.pt` holds the network after 500 optimizer steps (A1111 saved
it one step earlier and named it 500). Old A1111 names still parse.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .atomic import atomic_write_text
from .fileio import load_hypernetwork, load_optimizer_state, save_hypernetwork, save_optimizer_state
from .module import Hypernetwork

logger = logging.getLogger(__name__)

SETTINGS_NAME = "training_settings.json"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


def architecture(network: Hypernetwork) -> dict[str, Any]:
    """The config fields that decide tensor shapes and module order (not name, seed or info)."""
    config = network.config
    return {"layer_structure": list(config.layer_structure), "activation_func": config.activation_func,
            "is_layer_norm": config.is_layer_norm, "dropout_structure": list(config.dropout_structure),
            "activate_output": config.activate_output, "sizes": sorted(config.sizes)}


class RunFolder:
    """The files of one network's training runs, under `<hypernetwork folder>/<name>/`."""

    def __init__(self, hypernetwork_folder: Path, name: str):
        self.name = name
        self.root = Path(hypernetwork_folder) / name
        self._pattern = re.compile(rf"^{re.escape(name)}-(\d+)\.pt$")

    def checkpoint_path(self, step: int) -> Path:
        return self.root / f"{self.name}-{step}.pt"

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

    def save_checkpoint(self, network: Hypernetwork, optimizer_name: str, optimizer_state: Mapping) -> Path:
        """Write `<name>-<step>.pt` then its `.optim` (each atomically; the pair is valid once both exist)."""
        path = self.checkpoint_path(network.step)
        save_hypernetwork(network, path)
        save_optimizer_state(path, optimizer_name, optimizer_state)
        return path

    def latest_resumable(self, like: Hypernetwork, max_step: int | None = None) -> tuple[Hypernetwork, dict | None, Path] | None:
        """The newest checkpoint with `like`'s architecture and a matching `.optim`, loaded.

        Checkpoints that fail to load, have another architecture, or lack a valid `.optim` (a
        crash between the two writes) are skipped with a warning, newest first.
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
                logger.warning("skipping checkpoint %s: %s", checkpoint.path, optim.reason)
                continue
            return network, optim.state_dict, checkpoint.path
        return None

    def write_settings(self, settings: Mapping[str, Any]) -> Path:
        return atomic_write_text(self.root / SETTINGS_NAME, json.dumps(settings, indent=2, sort_keys=True, default=str))
