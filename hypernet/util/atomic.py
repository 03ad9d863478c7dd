"""Atomic file writes: every file the pack writes goes to a temp file first, then is renamed.

Temp files are named `.<target name>.hntmp-XXXXXXXX.tmp` in the target's folder, so a temp file
left by a killed process is recognisably this pack's (`stale_temp_files`), and finished files
get the mode a plain `open()` would give (0666 minus the umask), not mkstemp's 0600.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

logger = logging.getLogger(__name__)

TEMP_MARK = ".hntmp-"
# Ours: `.<name>.hntmp-XXXXXXXX.tmp`; also the unmarked `.<name>.XXXXXXXX.tmp` of earlier versions.
_TEMP_NAME = re.compile(r"^\..+\.(?:hntmp-)?[a-z0-9_]{8}\.tmp$")
_umask_lock = threading.Lock()


def _current_umask() -> int:
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0666 minus the process umask."""
    return 0o666 & ~_current_umask()


def is_temp_name(name: str) -> bool:
    """True for the temp-file names this pack's atomic writer uses."""
    return bool(_TEMP_NAME.match(name))


class TargetExistsError(FileExistsError):
    """A no-replace write found its target already there (the target is left untouched)."""


def _link_into_place(tmp: Path, target: Path) -> None:
    """Move `tmp` to `target` only if `target` does not exist (atomic where hard links work)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise TargetExistsError(errno.EEXIST, f"{target} already exists and was not written by this run; "
                                "it was left as it is", str(target)) from None
    except OSError:  # file systems without hard links: check, then rename
        if os.path.lexists(target):
            raise TargetExistsError(errno.EEXIST, f"{target} already exists and was not written by this run; "
                                    "it was left as it is", str(target)) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto `target` only on success.

    The temp file lives in the same folder so the final `os.replace` is atomic on one filesystem.
    On any exception (including KeyboardInterrupt) the temp file is removed and the target is
    left exactly as it was. With `replace=False` an existing target is never replaced
    (TargetExistsError).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARK}", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        if replace:
            os.replace(tmp, target)
        else:
            _link_into_place(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes, replace: bool = True) -> Path:
    """Write `data` to `target` atomically and return the target path."""
    with atomic_path(target, replace) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8", replace: bool = True) -> Path:
    """Write `text` to `target` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode(encoding), replace)


def atomic_write_with(target: str | os.PathLike, writer: Callable[[BinaryIO], None], replace: bool = True) -> Path:
    """Call `writer(fh)` on a temp file opened for binary writing, then rename onto `target`."""
    with atomic_path(target, replace) as tmp:
        with open(tmp, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def stale_temp_files(folder: str | os.PathLike, older_than: float) -> list[Path]:
    """This pack's temp files in `folder` (not its subfolders) last modified before `older_than`
    (a time.time() value): left by a save that was killed, never by one still running."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not is_temp_name(entry.name):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                        found.append(Path(entry.path))
                except OSError:
                    continue
    except OSError:
        return []
    return sorted(found)


def remove_stale_temp_files(folders: Iterable[str | os.PathLike], older_than: float) -> list[Path]:
    """Delete this pack's stale temp files in `folders`; return what was removed."""
    removed = []
    for folder in folders:
        for path in stale_temp_files(folder, older_than):
            try:
                path.unlink()
            except OSError as exc:
                logger.warning("could not remove the stale temp file %s: %s", path, exc)
                continue
            logger.info("removed the stale temp file %s (left by an interrupted save)", path)
            removed.append(path)
    return removed


def require_writable_folder(folder: str | os.PathLike, field: str) -> Path:
    """Create `folder` if needed and check that files can be written there; ValueError naming
    `field` and the folder otherwise (instead of a raw OSError halfway through a run)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{field}: {folder} cannot be used as a folder because {probe} is a file; "
                         "choose another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{field}: cannot create the folder {folder} ({exc.strerror or exc}); "
                         "choose a folder you can write to") from None
    if not folder.is_dir():
        raise ValueError(f"{field}: {folder} is not a folder; choose a folder")
    try:
        fd, probe_name = tempfile.mkstemp(prefix=f".write-check{TEMP_MARK}", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ValueError(f"{field}: cannot write into {folder} ({exc.strerror or exc}); "
                         "make it writable or choose another folder") from None
    os.close(fd)
    os.unlink(probe_name)
    return folder
