"""Which folders the dataset editor may open, and turning a requested folder into one of them.

By default: ComfyUI's input and output folders. Users add folders in `hypernetwork_datasets.json`
(`{"dataset_roots": ["/data/datasets"]}`, in ComfyUI's user folder) or in the environment variable
HYPERNETWORK_DATASET_ROOTS (paths separated by os.pathsep). A request names a folder as LoadDataset
does (relative to the input folder, absolute, or `~/...`); it must lie inside a root after symlinks are
resolved.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from ..util.paths import climbs_out, is_within, user_folder

CONFIG_NAME = "hypernetwork_datasets.json"
ENV_ROOTS = "HYPERNETWORK_DATASET_ROOTS"
_ENCODED = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)


class FolderRefused(Exception):
    """A requested folder that may not be used; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def configured_roots(config_file: Path | None, environ: Mapping[str, str]) -> tuple[list[Path], list[str]]:
    """Extra roots from the config file and the environment, and warnings about unusable entries."""
    roots: list[Path] = []
    warnings: list[str] = []
    entries: list[str] = [p for p in environ.get(ENV_ROOTS, "").split(os.pathsep) if p.strip()]
    if config_file is not None and config_file.is_file():
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
            listed = data.get("dataset_roots", []) if isinstance(data, dict) else None
            if not isinstance(listed, list):
                raise ValueError("'dataset_roots' must be a list of folder paths")
            entries.extend(str(p) for p in listed)
        except (OSError, ValueError) as exc:
            warnings.append(f"{config_file}: {exc}; expected {{\"dataset_roots\": [\"/path/to/datasets\"]}}")
    for entry in entries:
        path = Path(entry.strip()).expanduser()
        if not path.is_absolute():
            warnings.append(f"dataset root {entry!r} is not an absolute path; ignored")
            continue
        roots.append(path)
    return roots, warnings


def resolve_folder(text: object, roots: Iterable[Path], base: Path) -> Path:
    """The dataset folder a request names; FolderRefused(400/403/404) for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise FolderRefused(400, "folder: give a dataset folder (relative to ComfyUI's input folder, or absolute)")
    text = text.strip()
    if "\x00" in text or _ENCODED.search(text):
        raise FolderRefused(400, f"folder {text!r}: NUL bytes and percent-encoded characters are not accepted")
    if climbs_out(text):
        raise FolderRefused(403, f"folder {text!r} leaves ComfyUI's input folder; '..' is not allowed")
    real = os.path.realpath(user_folder(text, base))
    root_list = list(roots)
    if not any(is_within(real, os.path.realpath(r)) for r in root_list):
        raise FolderRefused(403, f"folder {text!r} is outside the folders the dataset editor may open "
                                 f"({', '.join(str(r) for r in root_list)}); add its parent to "
                                 f"{CONFIG_NAME} or {ENV_ROOTS} to allow it")
    if not os.path.isdir(real):
        raise FolderRefused(404, f"folder {text!r} does not exist or is not a folder")
    return Path(real)
