"""HTTP routes of the dataset editor, under /hypernetwork/dataset/ (thin: the logic is in hypernet/).

Every request names a `folder` as LoadDataset does; `hypernet.data.roots.resolve_folder`
allows only ComfyUI's input and output folders and the roots the user configured (README,
"Dataset editor"). Images are named by their relative names from the listing. Answers:
400 malformed request, 403 folder/name outside the allowed folders, 404 missing, 409 the files
changed since the editor loaded them (the body lists what changed), 422 unreadable image.

POST list {folder, filter?, offset?, limit?, overrides?}   one page + dataset/filtered tag counts
GET  thumbnail?folder&name&size                            small JPEG (cached)
POST save {folder, captions:[{name,text,base}], edits?, edits_base?, force?}
POST bulk {folder, op, filter?|names?, overrides?, dry_run}
POST exclusions {folder, names, excluded, edits_base}      POST crop {folder, name, box|null, edits_base}
GET  restore_points?folder                                 POST restore {folder, id}
GET  vocabulary                                            tags of the installed WD14 tagger (autocomplete)
GET  folders                                               allowed roots and the input folder's subfolders
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ..hypernet.data import caption_save
from ..hypernet.data.edit import EditOp, plan_bulk
from ..hypernet.data.index import (Filter, Listing, ScanCache, entry_tag_counts, list_page, resolve_image, scan_folder,
                                      with_overrides)
from ..hypernet.data.images import BadImageError, SUPPORTED_EXTENSIONS
from ..hypernet.data.roots import CONFIG_NAME, FolderRefused, configured_roots, resolve_folder
from ..hypernet.data.sidecar import SIDECAR_NAME, ConflictError, Edits, read_edits, validate_box, write_edits
from ..hypernet.data.thumbs import thumbnail_jpeg
from . import bridge

logger = logging.getLogger(__name__)

PREFIX = "/hypernetwork/dataset"
_THUMB_CACHE_ITEMS = 4096
_thumbs: OrderedDict[tuple, bytes] = OrderedDict()
_thumbs_lock = threading.Lock()
_scan_cache = ScanCache()
_scan_lock = threading.Lock()


class BadRequest(ValueError):
    """Malformed request body or parameter (400)."""


def allowed_roots() -> list[Path]:
    """Input, output and the user's configured dataset roots (re-read on every request)."""
    extra, warnings = configured_roots(bridge.user_directory() / CONFIG_NAME, os.environ)
    for warning in warnings:
        logger.warning("dataset editor: %s", warning)
    return [bridge.input_directory(), bridge.output_directory(), *extra]


def folder_of(data: dict[str, Any]) -> Path:
    return resolve_folder(data.get("folder"), allowed_roots(), bridge.input_directory())


def _ext(data: dict[str, Any]) -> str:
    ext = str(data.get("caption_extension") or ".txt")
    if not ext.startswith(".") or "/" in ext or "\\" in ext or "\x00" in ext or len(ext) > 16:
        raise BadRequest(f"caption_extension {ext!r}: give an extension like .txt")
    return ext


def _int(data: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(data.get(key, default))
    except (TypeError, ValueError):
        raise BadRequest(f"{key}: expected a whole number, got {data.get(key)!r}") from None


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _answer(work: Callable[[dict[str, Any]], Any], method: str = "POST"):
    """Wrap `work(data)` (run in a worker thread) into an aiohttp handler with the status mapping."""

    @functools.wraps(work)
    async def handler(request: web.Request) -> web.Response:
        if method == "GET":
            data: Any = dict(request.rel_url.query)
        else:
            try:
                data = await request.json()
            except (ValueError, UnicodeDecodeError):
                return _error(400, "the request body must be a JSON object")
        if not isinstance(data, dict):
            return _error(400, "the request body must be a JSON object")
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, work, data)
        except FolderRefused as exc:
            return _error(exc.status, str(exc))
        except ConflictError as exc:
            return _error(409, str(exc), conflicts=exc.changes)
        except BadImageError as exc:
            return _error(422, str(exc))
        except PermissionError as exc:
            return _error(403, str(exc))
        except FileNotFoundError as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        except OSError as exc:
            logger.warning("dataset editor %s: %s", request.path, exc)
            return _error(422, f"the file system refused: {exc.strerror or exc}")
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    return handler


def _entry_json(entry, edits: Edits) -> dict[str, Any]:
    return {"name": entry.name, "caption": entry.caption, "tags": entry.tags, "has_caption": entry.has_caption,
            "version": entry.version, "excluded": entry.name in edits.excluded,
            "crop": list(edits.crops[entry.name]) if entry.name in edits.crops else None}


def _overrides(data: dict[str, Any]) -> dict[str, str]:
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
        raise BadRequest("overrides: expected {image name: unsaved caption text}")
    return overrides


def _scan(root: Path, data: dict[str, Any]):
    with _scan_lock:  # the cache is shared by the server's worker threads
        return scan_folder(str(root), _ext(data), bool(data.get("recursive", False)), _scan_cache)


def list_folder(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    edits = read_edits(str(root))
    entries = with_overrides(_scan(root, data),
                             _overrides(data))
    local_excluded = data.get("excluded_names")
    if local_excluded is not None:  # the editor's unsaved exclusions replace the saved ones
        if not isinstance(local_excluded, list):
            raise BadRequest("excluded_names: expected a list of image names")
        edits.excluded = {str(n) for n in local_excluded}
    listing: Listing = list_page(entries, Filter.from_dict(data.get("filter")), edits.excluded,
                                 _int(data, "offset", 0), _int(data, "limit", 200))
    selection = data.get("selection")
    if selection is not None and not isinstance(selection, list):
        raise BadRequest("selection: expected a list of image names")
    picked = set(map(str, selection or []))
    selection_tags = entry_tag_counts(e for e in entries if e.name in picked) if picked else None
    return {"folder": str(root), "total": listing.total,
            "selection_tags": selection_tags.most_common() if selection_tags is not None else None, "matched": len(listing.matched),
            "offset": _int(data, "offset", 0), "items": [_entry_json(e, edits) for e in listing.page],
            "tags": listing.dataset_tags.most_common(), "matched_tags": listing.matched_tags.most_common(),
            "excluded": len(edits.excluded), "edits_version": edits.version,
            "edits": {"excluded": sorted(edits.excluded), "crops": {k: list(v) for k, v in edits.crops.items()}}
            if data.get("with_edits") else None}


def thumbnail(data: dict[str, Any]) -> web.Response:
    root = folder_of(data)
    path = resolve_image(str(root), str(data.get("name", "")))
    size = _int(data, "size", 256)
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size, size)
    with _thumbs_lock:
        body = _thumbs.get(key)
        if body is not None:
            _thumbs.move_to_end(key)
    if body is None:
        body = thumbnail_jpeg(path, size)
        with _thumbs_lock:
            _thumbs[key] = body
            while len(_thumbs) > _THUMB_CACHE_ITEMS:
                _thumbs.popitem(last=False)
    return web.Response(body=body, content_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600",
                                 "ETag": f'"{stat.st_mtime_ns:x}-{stat.st_size:x}-{size}"'})


def _edits_from(data: Any) -> Edits:
    if not isinstance(data, dict):
        raise BadRequest("edits: expected {\"excluded\": [...], \"crops\": {...}}")
    return Edits.from_dict(data, "edits")


def _save_json(result: caption_save.SaveResult) -> dict[str, Any]:
    return {"written": result.written, "versions": result.versions, "restore_point": result.restore_point,
            "edits_version": result.edits_version}


def save_captions(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    captions = data.get("captions") or []
    if not isinstance(captions, list):
        raise BadRequest("captions: expected a list of {name, text, base}")
    changes = [caption_save.CaptionChange.from_dict(c) for c in captions]
    edits = _edits_from(data["edits"]) if data.get("edits") is not None else None
    result = caption_save.save(str(root), changes, _ext(data), edits=edits, edits_base=data.get("edits_base"),
                               force=bool(data.get("force", False)))
    return _save_json(result)


def bulk_edit(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    op = EditOp.from_dict(data.get("op"))
    dry_run = bool(data.get("dry_run", True))
    overrides = _overrides(data)
    if overrides and not dry_run:
        raise BadRequest("overrides: save the unsaved captions first, or use dry_run")
    entries = with_overrides(_scan(root, data), overrides)
    names = data.get("names")
    if names is not None:
        if not isinstance(names, list):
            raise BadRequest("names: expected a list of image names")
        wanted = set(map(str, names))
        targets = [e for e in entries if e.name in wanted]
    else:
        excluded = data.get("excluded_names")
        excluded = set(map(str, excluded)) if isinstance(excluded, list) else read_edits(str(root)).excluded
        targets = list_page(entries, Filter.from_dict(data.get("filter")), excluded, 0, 0).matched
    changed = plan_bulk({e.name: e.caption for e in targets}, op)
    answer: dict[str, Any] = {"considered": len(targets), "changed": len(changed), "dry_run": dry_run}
    if dry_run:
        answer["captions"] = changed
        answer["versions"] = {e.name: e.version for e in targets if e.name in changed}
        answer["before"] = {e.name: e.caption for e in targets if e.name in changed}
        return answer
    versions = {e.name: e.version for e in targets}
    result = caption_save.save(str(root), [caption_save.CaptionChange(n, t, versions[n]) for n, t in changed.items()],
                               _ext(data), label=f"bulk {op.kind}")
    answer.update(_save_json(result))
    return answer


def _update_edits(data: dict[str, Any], change: Callable[[Edits], None]) -> dict[str, Any]:
    root = folder_of(data)
    with caption_save.folder_lock(str(root)):
        edits = read_edits(str(root))
        if edits.version != data.get("edits_base") and not data.get("force", False):
            raise ConflictError("exclusions/crops of this folder were changed elsewhere since you loaded them; "
                                "reload to see them", [{"name": SIDECAR_NAME, "kind": "edits",
                                                        "excluded": sorted(edits.excluded),
                                                        "crops": {k: list(v) for k, v in edits.crops.items()}}])
        change(edits)
        written = write_edits(str(root), edits, edits.version)
    return {"edits_version": written.version, "excluded": sorted(written.excluded),
            "crops": {k: list(v) for k, v in written.crops.items()}}


def set_exclusions(data: dict[str, Any]) -> dict[str, Any]:
    names = data.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("names: expected a list of image names")
    root = folder_of(data)
    for name in names:
        resolve_image(str(root), name)
    excluded = bool(data.get("excluded", True))

    def change(edits: Edits) -> None:
        if excluded:
            edits.excluded.update(names)
        else:
            edits.excluded.difference_update(names)

    return _update_edits(data, change)


def set_crop(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    name = str(data.get("name", ""))
    resolve_image(str(root), name)
    box = None if data.get("box") is None else validate_box(data.get("box"))

    def change(edits: Edits) -> None:
        if box is None:
            edits.crops.pop(name, None)
        else:
            edits.crops[name] = box

    return _update_edits(data, change)


def restore_points(data: dict[str, Any]) -> dict[str, Any]:
    return {"points": caption_save.list_restore_points(str(folder_of(data)))}


def restore_point(data: dict[str, Any]) -> dict[str, Any]:
    result = caption_save.restore(str(folder_of(data)), str(data.get("id", "")))
    return _save_json(result)


def vocabulary(data: dict[str, Any]) -> dict[str, Any]:
    """Tag names from the first installed WD14 tagger's selected_tags.csv (empty when none)."""
    from ..hypernet.tagger.files import find_taggers
    from ..hypernet.tagger.tags import format_tag, load_tag_table

    bridge.register_model_folders()
    for name, files in sorted(find_taggers(bridge.model_folders(bridge.TAGGER_FOLDER)).items()):
        try:
            table = load_tag_table(files.tags_path)
        except (OSError, ValueError) as exc:
            logger.warning("dataset editor: tags of tagger %s unreadable: %s", name, exc)
            continue
        return {"tagger": name, "tags": [format_tag(t, True, False) for t in table.names]}
    return {"tagger": None, "tags": []}


def folders(data: dict[str, Any]) -> dict[str, Any]:
    """The allowed roots, and subfolders of the input folder holding images (for the sidebar)."""
    base = bridge.input_directory()
    found = []
    for folder, subdirs, files in os.walk(base):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if os.path.relpath(folder, base).count(os.sep) >= 2:
            subdirs[:] = []
        images = sum(os.path.splitext(f)[1].lower() in SUPPORTED_EXTENSIONS for f in files)
        if images:
            found.append({"folder": os.path.relpath(folder, base).replace(os.sep, "/"), "images": images})
        if len(found) >= 200:
            break
    return {"roots": [str(r) for r in allowed_roots()], "config_file": str(bridge.user_directory() / CONFIG_NAME),
            "folders": found}


ROUTES = (("POST", "list", list_folder), ("GET", "thumbnail", thumbnail), ("POST", "save", save_captions),
          ("POST", "bulk", bulk_edit), ("POST", "exclusions", set_exclusions), ("POST", "crop", set_crop),
          ("GET", "restore_points", restore_points), ("POST", "restore", restore_point),
          ("GET", "vocabulary", vocabulary), ("GET", "folders", folders))


def register() -> bool:
    """Add the editor's routes to the host server (a no-op without one)."""
    done = [bridge.add_route(method, f"{PREFIX}/{name}", _answer(work, method)) for method, name, work in ROUTES]
    return all(done)


register()
