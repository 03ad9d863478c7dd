"""A cheap fingerprint of a dataset folder, so ComfyUI rescans it only when it changed."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .folder_walk import is_real_dir, walk_sorted
from .sidecar import SIDECAR_NAME

_CAPTION_BYTES_HASHED = 1 << 16  # caption files are small; longer ones are fingerprinted by size+mtime


def folder_fingerprint(root: Path, depth: int | None, caption_extension: str) -> str:
    """A cheap digest of what LoadDataset would read from `root`.

    Every visible entry contributes its relative name, size and mtime; caption files contribute
    their content instead of their mtime, so rewriting a caption with the same text (e.g. the
    tagger's overwrite mode run twice) does not force a rescan. `depth` None means all levels.
    """
    digest = hashlib.sha1()
    caption_extension = caption_extension.lower()
    for folder, _, entries in walk_sorted(str(root), depth):
        if isinstance(entries, OSError):
            digest.update(f"unlistable:{folder}:{entries.errno}\n".encode())
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = os.path.relpath(entry.path, root)
            if is_real_dir(entry):
                digest.update(f"d:{rel}\n".encode())
                continue
            try:
                stat = entry.stat()
            except OSError:
                digest.update(f"gone:{rel}\n".encode())
                continue
            if entry.name.lower().endswith(caption_extension) and stat.st_size <= _CAPTION_BYTES_HASHED:
                try:
                    with open(entry.path, "rb") as fh:
                        digest.update(f"c:{rel}:".encode() + hashlib.sha1(fh.read()).digest() + b"\n")
                    continue
                except OSError:
                    pass
            digest.update(f"f:{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    try:  # the dataset editor's exclusions and crops (a hidden file, so not part of the walk)
        with open(os.path.join(root, SIDECAR_NAME), "rb") as fh:
            digest.update(b"edits:" + hashlib.sha1(fh.read()).digest())
    except OSError:
        pass
    return digest.hexdigest()
