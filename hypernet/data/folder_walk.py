"""One deterministic folder walk for everything that scans a dataset folder."""
from __future__ import annotations

import os
from typing import Iterator


def is_real_dir(entry: os.DirEntry) -> bool:
    """A subfolder we may descend into (symlinked folders are never followed)."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def walk_sorted(root: str, max_depth: int | None) -> Iterator[tuple[str, int, list[os.DirEntry] | OSError]]:
    """Yield (folder, depth, entries) depth-first from `root`: entries sorted by name (hidden ones
    included, for the caller to count or skip), or the OSError that stopped listing the folder.

    Subfolders (not hidden, not symlinks) are visited after their parent's files, in name order,
    down to `max_depth` levels below root (None: all levels).
    """
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield folder, depth, exc
            continue
        yield folder, depth, entries
        if max_depth is None or depth < max_depth:
            subfolders = [e.path for e in entries if not e.name.startswith(".") and is_real_dir(e)]
            stack.extend((sub, depth + 1) for sub in reversed(subfolders))
