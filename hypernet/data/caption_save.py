"""Saving the editor's captions: conflict check, one restore point per save, atomic writes.

Each change names an image, the new caption text and the caption version (content hash) the
editor loaded. If any caption changed on disk since then, nothing is written and ConflictError
lists what changed (the editor asks the user). Otherwise what is about to be replaced (captions
and the edits sidecar) goes into a restore point `.hypernetwork_restore/<id>.json`, then each file
is written through a temp file and a rename. Saves of one folder are serialised in-process.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..util.atomic import atomic_write_bytes, atomic_write_text
from ..util.atomic_batch import discard_staged, stage_many, write_many
from ..util.paths import is_within
from .captions_io import decode_caption_bytes
from .caption_ext import validate_caption_extension
from .index import caption_name, content_hash, is_image_name, resolve_image
from .restore_point import MAX_POINT_BYTES, parse_restore_point
from .sidecar import SIDECAR_NAME, ConflictError, Edits, read_raw, write_edits

RESTORE_FOLDER = ".hypernetwork_restore"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def folder_lock(root: str) -> threading.Lock:
    """One lock per dataset folder: a check-then-write never interleaves with another save."""
    key = os.path.realpath(root)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class CaptionChange:
    """New text for one image's caption; `base` is the version the editor loaded (None: no file)."""

    name: str
    text: str
    base: str | None

    @classmethod
    def from_dict(cls, data: Any) -> "CaptionChange":
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str) or \
                not isinstance(data.get("text"), str):
            raise ValueError("captions: each entry needs 'name' (image name) and 'text' (the caption)")
        base = data.get("base")
        if base is not None and not isinstance(base, str):
            raise ValueError(f"captions: 'base' of {data['name']!r} must be the version from the listing or null")
        return cls(data["name"], data["text"], base)


@dataclass
class SaveResult:
    written: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    restore_point: str | None = None
    edits_version: str | None = None


def _read(root: str, path: str, listing: dict[str, os.DirEntry] | None = None) -> bytes | None:
    """A caption's bytes (None: no file); PermissionError for a symlink leading out of root."""
    entry = listing.get(os.path.basename(path)) if listing is not None and os.path.dirname(path) == root else None
    is_link = entry.is_symlink() if entry is not None else os.path.islink(path)
    if is_link and not is_within(os.path.realpath(path), os.path.realpath(root), include_root=False):
        raise PermissionError(f"caption {os.path.relpath(path, root)} is a symlink leading out of the dataset "
                              "folder; the editor does not read or write through it")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _differs(raw: bytes | None, text: str) -> bool:
    """Whether writing `text` changes the file (no file and no text: nothing to write)."""
    return bool(text) if raw is None else raw != text.encode("utf-8")


def _caption_path(root: str, name: str, caption_extension: str,
                  listing: dict[str, os.DirEntry] | None = None) -> str:
    """The caption file of image `name` (a listed image inside root, see resolve_image).

    `listing` (root's entries by name) lets a plain file name be checked without system calls;
    names in subfolders and symlinks get resolve_image's full check."""
    entry = listing.get(name) if listing is not None else None
    if entry is None or entry.is_symlink() or not entry.is_file(follow_symlinks=False) or \
            not is_image_name(name):
        image = resolve_image(root, name)
    else:
        image = entry.path
    caption = os.path.join(os.path.dirname(image), os.path.basename(caption_name(name, caption_extension)))
    if is_image_name(os.path.basename(caption)) or os.path.normcase(caption) == os.path.normcase(image):
        # Never reached with a validated extension; a second lock on the door all the same.
        raise ValueError(f"the caption file of {name!r} would be an image ({os.path.basename(caption)}); "
                         "the editor never writes or deletes images")
    return caption


def _root_listing(root: str, count: int) -> dict[str, os.DirEntry] | None:
    """Root's entries by name when many files are saved (one listing instead of a stat each)."""
    if count < 64:
        return None
    with os.scandir(root) as entries:
        return {e.name: e for e in entries}


def _new_point_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def _write_restore_point(root: str, label: str, captions: dict[str, str | None], edits_raw: bytes | None,
                         include_edits: bool, caption_extension: str) -> str:
    point_id = _new_point_id()
    data = {"id": point_id, "created": time.time(), "label": label, "caption_extension": caption_extension,
            "captions": captions,
            "edits": (edits_raw.decode("utf-8") if edits_raw is not None else None) if include_edits else False}
    atomic_write_text(os.path.join(root, RESTORE_FOLDER, point_id + ".json"),
                      json.dumps(data, ensure_ascii=False))
    return point_id


def save(root: str, changes: list[CaptionChange], caption_extension: str = ".txt", *,
         edits: Edits | None = None, edits_base: str | None = None, force: bool = False,
         label: str = "save") -> SaveResult:
    """Write changed captions (and the edits sidecar when `edits` is given) as one restorable step.

    Raises ConflictError (nothing written) when a caption or the sidecar changed since the
    editor loaded it, unless `force`. An empty text for an image without a caption file creates
    no file; an existing caption is never deleted (it is emptied).
    """
    validate_caption_extension(caption_extension)
    with folder_lock(root):
        listing = _root_listing(root, len(changes))
        paths = {c.name: _caption_path(root, c.name, caption_extension, listing) for c in changes}
        current = {c.name: _read(root, paths[c.name], listing) for c in changes}
        conflicts = []
        for change in changes:
            raw = current[change.name]
            if content_hash(raw) != change.base:
                conflicts.append({"name": change.name, "kind": "caption", "base": change.base,
                                  "current": content_hash(raw),
                                  "current_text": None if raw is None else decode_caption_bytes(raw).text,
                                  "your_text": change.text})
        edits_raw = read_raw(root) if edits is not None else None
        if edits is not None and content_hash(edits_raw) != edits_base:
            conflicts.append({"name": SIDECAR_NAME, "kind": "edits", "base": edits_base,
                              "current": content_hash(edits_raw)})
        if conflicts and not force:
            raise ConflictError(f"{len(conflicts)} file(s) changed on disk since the editor loaded them", conflicts)
        todo = [c for c in changes if _differs(current[c.name], c.text)]
        result = SaveResult()
        if not todo and edits is None:
            return result
        old = {c.name: (None if current[c.name] is None else decode_caption_bytes(current[c.name]).text)
               for c in todo}
        result.restore_point = _write_restore_point(root, label, old, edits_raw, edits is not None,
                                                    caption_extension)
        encoded = {c.name: c.text.encode("utf-8") for c in todo}
        write_many((paths[name], data) for name, data in encoded.items())
        for name, data in encoded.items():
            result.written.append(name)
            result.versions[name] = content_hash(data)
        if edits is not None:
            result.edits_version = write_edits(root, edits, None, force=True).version
        return result


def list_restore_points(root: str) -> list[dict[str, Any]]:
    """Restore points of the folder, newest first: id, created, label, number of captions."""
    folder = os.path.join(root, RESTORE_FOLDER)
    points = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        point_id = name[:-len(".json")]
        try:
            with open(os.path.join(folder, name), "rb") as fh:
                raw = fh.read(MAX_POINT_BYTES + 1)
            point = parse_restore_point(raw, point_id, name)
            points.append({"id": point_id, "created": point.created, "label": point.label,
                           "captions": len(point.captions), "edits": point.edits is not False})
        except (OSError, ValueError, RecursionError):
            continue  # not a restore point the editor wrote (or one edited since): not offered
    return sorted(points, key=lambda p: (p["created"], p["id"]), reverse=True)


def _point_file(root: str, point_id: str) -> str:
    if not isinstance(point_id, str) or not point_id or any(c not in "0123456789abcdef-" for c in point_id):
        raise ValueError(f"id {point_id!r} is not a restore point id; pick one from the list")
    path = os.path.join(root, RESTORE_FOLDER, point_id + ".json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"restore point {point_id} does not exist in this folder")
    return path


def restore(root: str, point_id: str) -> SaveResult:
    """Put back what the save `point_id` replaced. The current state first becomes a new restore
    point, so a restore can itself be undone. A caption that had no file before that save is
    deleted (the save created it). The restore point is validated as a whole first, and the
    restore is all-or-nothing: every new file is staged before the first one replaces anything."""
    path = _point_file(root, point_id)
    with open(path, "rb") as fh:
        raw = fh.read(MAX_POINT_BYTES + 1)
    point = parse_restore_point(raw, point_id, f"restore point {point_id}")
    with folder_lock(root):
        paths = {name: _caption_path(root, name, point.caption_extension) for name in point.captions}
        now = {name: _read(root, path) for name, path in paths.items()}
        has_edits = point.edits is not False
        edits_raw = read_raw(root) if has_edits else None
        sidecar = os.path.join(root, SIDECAR_NAME)
        writes = [(paths[name], text.encode("utf-8")) for name, text in point.captions.items() if text is not None]
        deletes = [paths[name] for name, text in point.captions.items() if text is None and now[name] is not None]
        if has_edits and point.edits is not None:
            writes.append((sidecar, point.edits.encode("utf-8")))
        elif has_edits and edits_raw is not None:
            deletes.append(sidecar)
        before = {paths[name]: now[name] for name in point.captions}
        before[sidecar] = edits_raw
        undo_point = _write_restore_point(
            root, f"before restoring {point_id}",
            {n: (None if raw is None else decode_caption_bytes(raw).text) for n, raw in now.items()},
            edits_raw, has_edits, point.caption_extension)
        try:
            _commit(stage_many(writes), deletes, before)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, RESTORE_FOLDER, undo_point + ".json"))
            raise
        result = SaveResult(restore_point=undo_point)
        for name, text in point.captions.items():
            result.written.append(name)
            result.versions[name] = None if text is None else content_hash(text.encode("utf-8"))
        if has_edits:
            result.edits_version = content_hash(read_raw(root))
        return result


def _commit(staged: list[tuple[str, str]], deletes: list[str], before: dict[str, bytes | None]) -> None:
    """Rename the staged files into place and delete `deletes`; if any step fails, put back what
    was already changed (from `before`, the files' bytes before the restore) and re-raise."""
    done: list[str] = []
    try:
        for tmp, target in staged:
            os.replace(tmp, target)
            done.append(target)
        for target in deletes:
            os.unlink(target)
            done.append(target)
    except BaseException:
        discard_staged(staged)
        for target in done:
            with contextlib.suppress(OSError):
                if before.get(target) is None:
                    os.unlink(target)
                else:
                    atomic_write_bytes(target, before[target])
        raise
