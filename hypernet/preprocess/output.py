"""Preprocess output folder: choosing it without mixing runs, and writing files atomically.

A folder that already holds visible files is never mixed into: "refuse" raises, "new_subfolder"
writes into a fresh `run-NNNN` subfolder, "overwrite" first deletes the files a previous
Preprocess run recorded in its manifest with their content hash, when name and hash both still
match (nothing else: a file that merely looks like an output, a file changed since, or a name a
tampered manifest lists stays, and the report lists what was kept). Outputs never replace a file
they did not write.
Sources are never inside the folder that gets written or cleaned.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..util.atomic import TargetExistsError, atomic_write_bytes, atomic_write_text, require_writable_folder
from ..util.names import safe_name
from ..util.paths import is_within

MANIFEST_NAME = ".hn_preprocess.json"
PNG_COMPRESS_LEVEL = 4  # ~3x faster than zlib level 6 for ~10 % larger files
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
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


def _manifest_hashes(folder: str) -> dict[str, str]:
    """{file name: sha256} the previous run recorded (names without separators only)."""
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return {}
    hashes = data.get("sha256") if isinstance(data, dict) else None
    if not isinstance(hashes, dict):
        return {}
    return {name: digest for name, digest in hashes.items()
            if isinstance(digest, str) and _HEX64.fullmatch(digest) and "/" not in name and "\\" not in name}


def _sha256_of(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _is_recorded_output(folder: str, name: str, recorded: dict[str, str]) -> bool:
    path = os.path.join(folder, name)
    return (name in recorded and os.path.isfile(path) and not os.path.islink(path)
            and _sha256_of(path) == recorded[name])


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
    recorded = _manifest_hashes(folder)
    removable = [n for n in entries if _is_recorded_output(folder, n, recorded)]
    kept = [n for n in entries if n not in removable]
    mismatched = [n for n in kept if n in recorded]
    for name in removable:
        os.unlink(os.path.join(folder, name))
    manifest = os.path.join(folder, MANIFEST_NAME)
    if os.path.exists(manifest):
        os.unlink(manifest)
    note = (f"Output: overwrote {folder} (removed {len(removable)} file(s) the previous Preprocess run "
            "recorded in its manifest, name and content hash matching)")
    if mismatched:
        note += (f"; kept {len(mismatched)} file(s) the manifest lists whose content is not what that run "
                 f"wrote (changed since, or a manifest edited by hand): {', '.join(mismatched[:5])}"
                 + (" ..." if len(mismatched) > 5 else ""))
        kept = [n for n in kept if n not in recorded]
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


def _write_new(path: str, data: bytes) -> str:
    try:
        atomic_write_bytes(path, data, replace=False)
    except TargetExistsError:
        raise _refuse_existing(path) from None
    return hashlib.sha256(data).hexdigest()


def write_png(img: Image.Image, path: str) -> str:
    """Write an RGB (or RGBA) PNG atomically; no metadata, fixed compression -> byte-identical reruns.
    Never replaces an existing file (overwrite removed this pack's own outputs beforehand).
    Returns the file's sha256 (for the manifest)."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return _write_new(path, buffer.getvalue())


def write_caption(text: str, path: str) -> str:
    """Write a UTF-8 caption file atomically; never replaces an existing file. Returns its sha256."""
    return _write_new(path, text.encode("utf-8"))


def write_manifest(folder: str, files: list[str], config: dict[str, Any], complete: bool,
                   error: str = "", hashes: dict[str, str] | None = None) -> None:
    """Record what this run wrote, by name and sha256 (`hashes`): a later 'overwrite' removes a
    file only when both still match."""
    data = {"format": "hn_preprocess_run", "version": 2, "complete": complete,
            "files": files, "sha256": {name: (hashes or {})[name] for name in files if name in (hashes or {})},
            "config": config}
    if error:
        data["error"] = error
    atomic_write_text(os.path.join(folder, MANIFEST_NAME),
                      json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False))
