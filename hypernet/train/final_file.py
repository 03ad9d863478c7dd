"""May a training run write its final `<name>.pt`? Never over a file the user owns unless asked.

An existing final file is replaced only when it is
- the file this run continues (picked in `hypernetwork_name`: A1111 saves back to it),
- the final file this run's folder wrote earlier (recorded by hash in the run folder, or equal
  to its newest checkpoint, as every final file of a run is),
- exactly the network the run started from (e.g. saved by Create Hypernetwork in the same graph),
- or the user turned on `overwrite`.
The same holds for its `.optim`: a `<name>.pt.optim` without a `<name>.pt` is the user's.
Anything else raises FileExistsError naming the file and the fix, before any training.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..network.fileio import load_hypernetwork, optim_path, short_hash
from ..network.module import Hypernetwork
from .checkpoints import FINAL_RECORD_NAME, SETTINGS_NAME, RunFolder, architecture
from .log import CSV_NAME


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def holds_network(path: Path, network: Hypernetwork) -> bool:
    """True when the file at `path` holds exactly `network` (layout, step and every weight)."""
    try:
        saved = load_hypernetwork(path)
    except (ValueError, FileNotFoundError):
        return False
    if architecture(saved) != architecture(network) or saved.step != network.step:
        return False
    ours = dict(network.named_parameters())
    theirs = dict(saved.named_parameters())
    return ours.keys() == theirs.keys() and all(
        torch.equal(ours[key].detach().cpu(), theirs[key]) for key in ours)


def _matches_last_checkpoint(final_path: Path, run_folder: RunFolder) -> bool:
    """A run's final file equals its last checkpoint: so is one written before runs recorded it."""
    checkpoints = run_folder.checkpoints()
    if not checkpoints:
        return False
    try:
        last = load_hypernetwork(checkpoints[-1].path)
    except (ValueError, FileNotFoundError):
        return False
    return holds_network(final_path, last)


def final_file_note(final_path: Path, run_folder: RunFolder, *, overwrite: bool, source_file: Path | None,
                    starting_network: Hypernetwork) -> str:
    """'' when the final file is free; a note for the report when replacing it is allowed;
    FileExistsError otherwise."""
    final_path = Path(final_path)
    _refuse_folders_in_the_way(run_folder)
    optim = optim_path(final_path)
    if optim.is_dir():
        raise FileExistsError(f"{optim} is a folder where training writes the final optimizer state; move it away "
                              "or choose another hypernetwork name")
    if not final_path.exists() and not final_path.is_symlink():
        if not optim.exists() and not optim.is_symlink():
            return ""
        if overwrite:
            return f"the final optimizer state replaces the existing {optim.name} (overwrite is on)"
        raise FileExistsError(
            f"{optim} already exists (without {final_path.name}) and was not written by this training run; "
            "training would replace it. Choose another name (Create Hypernetwork's name), move the file away, "
            "or turn on 'overwrite' to replace it")
    if not final_path.is_file():
        raise FileExistsError(f"the final file {final_path} exists and is not a file; move it away or choose "
                              "another hypernetwork name")
    if source_file is not None and _same_file(final_path, source_file):
        return f"the final file replaces {final_path.name}, the file this run continues (as A1111 does)"
    if run_folder.is_own_final(final_path) or _matches_last_checkpoint(final_path, run_folder):
        return f"the final file replaces {final_path.name}, written by an earlier run of {run_folder.root}"
    if holds_network(final_path, starting_network):
        return f"the final file replaces {final_path.name}, which held the network this run started from"
    if overwrite:
        return f"the final file replaces the existing {final_path.name} (overwrite is on)"
    raise FileExistsError(
        f"{final_path} already exists and was not written by this training run; training would replace it. "
        "Choose another name (Create Hypernetwork's name, or rename the file), pick that file in "
        "hypernetwork_name to continue it, or turn on 'overwrite' to replace it")


def _refuse_folders_in_the_way(run_folder: RunFolder) -> None:
    """A folder (or a link to one) named like a file the run writes would fail the run at its first
    save, maybe hours in: refuse it now, before any training."""
    if not run_folder.root.is_dir():
        if run_folder.root.exists():
            raise FileExistsError(f"{run_folder.root} is a file where training keeps its run folder; move it away "
                                  "or choose another hypernetwork name")
        return
    stepped = re.compile(rf"^{re.escape(run_folder.name)}-\d+\.(?:pt|pt\.optim|png)$")
    for entry in os.scandir(run_folder.root):
        if (entry.name in (SETTINGS_NAME, FINAL_RECORD_NAME, CSV_NAME) or stepped.match(entry.name)) and \
                entry.is_dir():
            raise FileExistsError(f"{entry.path} is a folder where training writes a file (checkpoints, previews "
                                  "and logs go there); move it away or choose another hypernetwork name")


class FinalFileGuard:
    """Remembers the final file's state when the run starts; refuses at the end if it changed."""

    def __init__(self, final_path: Path):
        self.final_path = Path(final_path)
        self._before = self._state()

    def _state(self) -> tuple[str | None, tuple[int, int] | None]:
        """The final file's hash and its `.optim`'s size and time (None: missing)."""
        try:
            network = short_hash(self.final_path) if self.final_path.is_file() else None
        except (OSError, FileNotFoundError):
            network = None
        try:
            stat = os.stat(optim_path(self.final_path))
            optim = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            optim = None
        return network, optim

    def __call__(self, path: Path) -> None:
        if self._state() != self._before:
            raise FileExistsError(
                f"{self.final_path} was created or changed by something else while training ran; it was left "
                "as it is. The trained network is in the run folder's last checkpoint")
