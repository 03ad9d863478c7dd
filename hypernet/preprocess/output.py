"""Preprocess output folder: choosing it without mixing runs, and writing files atomically.

A folder that already holds visible files is never mixed into: "refuse" raises, "new_subfolder"
writes into a fresh `run-NNNN` subfolder, "overwrite" first deletes the files a previous
Preprocess run listed in its manifest (nothing else: a file that merely looks like an output
stays, and the report lists what was kept). Outputs never replace a file they did not write.
Sources are never inside the folder that gets written or cleaned.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..util.atomic import TargetExistsError, atomic_write_text, atomic_write_with, require_writable_folder
from ..util.names import safe_name
from ..util.paths import is_within

MANIFEST_NAME = ".hn_preprocess.json"
PNG_COMPRESS_LEVEL = 4  # ~3x faster than zlib level 6 for ~10 % larger files
_MAX_STEM_BYTES = 160  # + the 'NNNNN-S-' prefix stays within names.MAX_NAME_BYTES


@dataclass(frozen=True)
class OutputFolder:
    """The folder outputs go to and one report line saying how it was chosen."""

    path: str
    note: str


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, folder_real: str) -> bool:
    return is_within(_real(path), folder_real)


def _visible_entries(folder: str) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith("."))


def _manifest_files(folder: str) -> set[str]:
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return {str(n) for n in data.get("files", []) if "/" not in str(n) and "\\" not in str(n)}
    except (OSError, ValueError, AttributeError):
        return set()


def prepare_output_folder(requested: str, policy: str, dataset_root: str,
                          source_paths: Iterable[str]) -> OutputFolder:
    """Create or clean the output folder according to `policy`; see module docstring."""
    if not os.path.isabs(requested):
        raise ValueError(f"output_directory {requested!r} must be an absolute path")
    folder = os.path.abspath(requested)
    folder_real = _real(folder)
    if dataset_root and folder_real == _real(dataset_root):
        raise ValueError(f"output_directory {folder} is the dataset folder; choose another folder "
                         "(sources are never modified)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"output_directory {folder} is a file; choose a folder")
    if not os.path.isdir(folder):
        require_writable_folder(folder, "output_directory")
        return OutputFolder(folder, f"Output: wrote into new folder {folder}")
    require_writable_folder(folder, "output_directory")
    entries = _visible_entries(folder)
    if not entries:
        return OutputFolder(folder, f"Output: wrote into empty folder {folder}")
    if policy == "refuse":
        raise ValueError(
            f"output_directory {folder} already holds {len(entries)} file(s) (e.g. {entries[0]}); "
            "choose an empty folder or set if_output_exists to 'new_subfolder' or 'overwrite'")
    if policy == "new_subfolder":
        number = 1
        while True:
            sub = os.path.join(folder, f"run-{number:04d}")
            try:
                os.mkdir(sub)
                break
            except FileExistsError:
                number += 1
        return OutputFolder(sub, f"Output: {folder} already held files from another run; "
                                 f"wrote into the fresh subfolder {sub}")
    sources_inside = [p for p in source_paths if _inside(p, folder_real)]
    if sources_inside:
        raise ValueError(f"output_directory {folder} contains dataset source files "
                         f"(e.g. {sources_inside[0]}); overwrite would delete them - "
                         "choose another folder")
    ours = _manifest_files(folder)
    removable = [n for n in entries if n in ours and os.path.isfile(os.path.join(folder, n))
                 and not os.path.islink(os.path.join(folder, n))]
    kept = [n for n in entries if n not in removable]
    for name in removable:
        os.unlink(os.path.join(folder, name))
    manifest = os.path.join(folder, MANIFEST_NAME)
    if os.path.exists(manifest):
        os.unlink(manifest)
    note = (f"Output: overwrote {folder} (removed {len(removable)} file(s) listed in the previous "
            "Preprocess run's manifest)")
    if kept:
        note += (f"; kept {len(kept)} file(s) it did not write: {', '.join(kept[:5])}"
                 + (" ..." if len(kept) > 5 else "") + " (an output never replaces them)")
    return OutputFolder(folder, note)


def output_stem(index: int, subindex: int, source_stem: str) -> str:
    """A1111 naming "{index:05}-{subindex}-{stem}", stem shortened to keep names portable."""
    stem = source_stem.encode("utf-8")[:_MAX_STEM_BYTES].decode("utf-8", "ignore")
    stem = "".join(ch if ord(ch) >= 32 and ord(ch) != 127 else "_" for ch in stem)
    return safe_name(f"{index:05d}-{subindex}-{stem}".rstrip(), "output file name")


def _refuse_existing(path: str) -> ValueError:
    return ValueError(f"output {path} already exists and was not written by this Preprocess run; it was left "
                      "as it is. Move it away or choose another output_directory")


def write_png(img: Image.Image, path: str) -> None:
    """Write an RGB PNG atomically; no metadata, fixed compression -> byte-identical reruns.
    Never replaces an existing file (overwrite removed this pack's own outputs beforehand)."""
    try:
        atomic_write_with(path, lambda fh: img.save(fh, format="PNG", compress_level=PNG_COMPRESS_LEVEL),
                          replace=False)
    except TargetExistsError:
        raise _refuse_existing(path) from None


def write_caption(text: str, path: str) -> None:
    """Write a UTF-8 caption file atomically; never replaces an existing file."""
    try:
        atomic_write_text(path, text, replace=False)
    except TargetExistsError:
        raise _refuse_existing(path) from None


def write_manifest(folder: str, files: list[str], config: dict[str, Any], complete: bool,
                   error: str = "") -> None:
    """Record what this run wrote (lets a later 'overwrite' remove exactly these files)."""
    data = {"format": "hn_preprocess_run", "version": 1, "complete": complete,
            "files": files, "config": config}
    if error:
        data["error"] = error
    atomic_write_text(os.path.join(folder, MANIFEST_NAME),
                      json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False))
