"""Find installed WD14 taggers in a list of folders and resolve a name to its two files.

Two layouts are recognised in every folder:
- flat (pythongosssss layout): `<name>.onnx` + `<name>.csv`
- folder (Hugging Face layout): `<name>/model.onnx` + `<name>/selected_tags.csv`
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import TaggerFilesMissingError

logger = logging.getLogger(__name__)

HF_MODEL_FILE = "model.onnx"
HF_TAGS_FILE = "selected_tags.csv"

PathLike = str | os.PathLike


@dataclass(frozen=True)
class TaggerFiles:
    """The two files that make up one tagger."""

    name: str
    model_path: Path
    tags_path: Path


def validate_tagger_name(name: str) -> str:
    """Return `name` if it is one plain path component; reject anything that could escape a folder."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"tagger name must be a non-empty string, got {name!r}; pick one from the model list")
    bad = (
        name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or os.path.isabs(name)
        or (len(name) >= 2 and name[1] == ":")
    )
    if bad:
        raise ValueError(
            f"tagger name {name!r} is not a plain model name (it contains a path separator, '..' or a "
            "drive); use the name as listed, e.g. 'wd-v1-4-moat-tagger-v2'"
        )
    return name


def _candidates(folder: Path, name: str) -> tuple[TaggerFiles, TaggerFiles]:
    flat = TaggerFiles(name, folder / f"{name}.onnx", folder / f"{name}.csv")
    nested = TaggerFiles(name, folder / name / HF_MODEL_FILE, folder / name / HF_TAGS_FILE)
    return flat, nested


def _names_in(folder: Path) -> Iterable[str]:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        logger.warning("Cannot read tagger folder %s (permission denied); skipping it", folder)
        return []
    names: list[str] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() == ".onnx":
            names.append(entry.stem)
        elif entry.is_dir() and (entry / HF_MODEL_FILE).is_file():
            names.append(entry.name)
    return names


def find_taggers(folders: Sequence[PathLike]) -> dict[str, TaggerFiles]:
    """Complete taggers (both files present) by name; the first folder that has a name wins."""
    found: dict[str, TaggerFiles] = {}
    for folder in folders:
        folder = Path(folder)
        for name in _names_in(folder):
            if name in found:
                continue
            for cand in _candidates(folder, name):
                if cand.model_path.is_file() and cand.tags_path.is_file():
                    found[name] = cand
                    break
    return found


def find_incomplete_taggers(folders: Sequence[PathLike]) -> dict[str, Path]:
    """Models whose tags CSV is missing, mapped to the CSV path that is expected (for a UI hint)."""
    complete = find_taggers(folders)
    missing: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder)
        for name in _names_in(folder):
            if name in complete or name in missing:
                continue
            for cand in _candidates(folder, name):
                if cand.model_path.is_file():
                    missing[name] = cand.tags_path
                    break
    return missing


def list_taggers(folders: Sequence[PathLike]) -> list[str]:
    """Sorted names of the complete taggers found in `folders`."""
    return sorted(find_taggers(folders))


def resolve_tagger(name: str, folders: Sequence[PathLike]) -> TaggerFiles:
    """Resolve a listed name back to its model and CSV; named errors when either is missing."""
    validate_tagger_name(name)
    found = find_taggers(folders)
    if name in found:
        return found[name]
    for folder in folders:
        for cand in _candidates(Path(folder), name):
            if cand.model_path.is_file():
                raise TaggerFilesMissingError(
                    f"tagger {name!r}: model {cand.model_path} has no tags CSV; download "
                    f"selected_tags.csv from the same Hugging Face repo and save it as {cand.tags_path}"
                )
    where = ", ".join(str(Path(f)) for f in folders) or "(no tagger folders registered)"
    raise TaggerFilesMissingError(
        f"tagger {name!r} not found in {where}; put model.onnx and selected_tags.csv there as "
        f"{name}.onnx and {name}.csv (or as {name}/model.onnx and {name}/selected_tags.csv), "
        "or download it"
    )
