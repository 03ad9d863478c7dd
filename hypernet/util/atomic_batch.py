"""Atomic writes of many small files at once (the dataset editor saving thousands of captions).

Same contract as `atomic.atomic_write_bytes` for each file: the data goes to a temp file named as
the pack's other temp files (`.<name>.hntmp-XXXXXXXX.tmp`, so a killed save's leftovers are
recognised and cleaned up) and is renamed onto the target, so a reader sees the old or the new
file, never a part. Instead of one fsync per file the batch is flushed to disk once (`os.sync`)
before the first rename, which keeps thousands of captions from costing thousands of syncs.
New files get the mode a plain `open()` gives (0666 minus the umask, applied by `os.open`).
"""
from __future__ import annotations

import contextlib
import os
import secrets
from typing import Iterable

from .atomic import TEMP_MARK

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _temp_name(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}{TEMP_MARK}{secrets.token_hex(4)}.tmp")


def stage_many(files: Iterable[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """Write every (target, data) to a temp file next to its target and flush them to disk; return
    the (temp, target) pairs for `commit_staged`. On an error the temp files are removed."""
    pending: list[tuple[str, str]] = []
    try:
        for target, data in files:
            tmp = _temp_name(target)
            fd = os.open(tmp, _FLAGS, 0o666)
            pending.append((tmp, target))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        if pending and hasattr(os, "sync"):
            os.sync()
    except BaseException:
        discard_staged(pending)
        raise
    return pending


def discard_staged(pending: Iterable[tuple[str, str]]) -> None:
    """Remove staged temp files that were not committed."""
    for tmp, _ in pending:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def commit_staged(pending: list[tuple[str, str]]) -> list[str]:
    """Rename staged temp files onto their targets; return the targets."""
    for tmp, target in pending:
        os.replace(tmp, target)
    return [target for _, target in pending]


def write_many(files: Iterable[tuple[str, bytes]]) -> list[str]:
    """Write every (target, data) atomically; return the targets. On an error before the renames
    nothing is replaced and the temp files are removed; the targets' folders must exist."""
    return commit_staged(stage_many(files))
