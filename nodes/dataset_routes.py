"""HTTP routes of the dataset editor, under /hypernetwork/dataset/ (thin: the logic is in hypernet/).

Every request names a `folder` as LoadDataset does; `hypernet.data.roots.resolve_folder`
allows only ComfyUI's input and output folders and the roots the user configured (README,
"Dataset editor"). Images are named by their relative names from the listing. Answers:
400 malformed request, 403 folder/name outside the allowed folders, 404 missing, 409 the files
changed since the editor loaded them (the body lists what changed), 422 unreadable image.

POST list {folder, filter?, offset?, limit?, overrides?}   one page + dataset/filtered tag counts, and
                                                           `skipped`: images whose names a request cannot carry
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
from ..hypernet.data.caption_ext import DEFAULT as DEFAULT_CAPTION_EXTENSION, validate_caption_extension
from ..hypernet.data.edit import EditOp, plan_bulk
from ..hypernet.data.index import (MAX_PAGE, Filter, Listing, ScanCache, entry_tag_counts, list_page, resolve_image,
                                      scan_folder, with_overrides)
from ..hypernet.data.images import BadImageError, SUPPORTED_EXTENSIONS, read_header
from ..hypernet.data.roots import CONFIG_NAME, FolderRefused, configured_roots, resolve_folder
from ..hypernet.data.sidecar import (MIN_CROP_PIXELS, SIDECAR_NAME, ConflictError, Edits, crop_pixels, read_edits,
                                      validate_box, write_edits)
from ..hypernet.data.thumbs import thumbnail_jpeg
from .host import paths, routes
from .route_body import MAX_BODY_BYTES, MAX_NAMES, BadRequest, Query, flag, names, parse_json_body, text, whole

logger = logging.getLogger(__name__)

PREFIX = "/hypernetwork/dataset"
_THUMB_CACHE_ITEMS = 4096
_SKIPPED_SHOWN = 200  # unaddressable images listed by name (all are counted)
_thumbs: OrderedDict[tuple, bytes] = OrderedDict()
_thumbs_lock = threading.Lock()
_scan_cache = ScanCache()
_scan_lock = threading.Lock()


def allowed_roots() -> list[Path]:
    """Input, output and the user's configured dataset roots (re-read on every request)."""
    extra, warnings = configured_roots(paths.user_directory() / CONFIG_NAME, os.environ)
    for warning in warnings:
        logger.warning("dataset editor: %s", warning)
    return [paths.input_directory(), paths.output_directory(), *extra]


def folder_of(data: dict[str, Any]) -> Path:
    return resolve_folder(data.get("folder"), allowed_roots(), paths.input_directory())


def _ext(data: dict[str, Any]) -> str:
    """The caption extension (LoadDataset's widget), checked by the pack's one rule for it."""
    ext = data.get("caption_extension")
    return DEFAULT_CAPTION_EXTENSION if ext is None or ext == "" else validate_caption_extension(ext)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _answer(work: Callable[[dict[str, Any]], Any], method: str = "POST"):
    """Wrap `work(data)` (run in a worker thread) into an aiohttp handler with the status mapping."""

    @functools.wraps(work)
    async def handler(request: web.Request) -> web.Response:
        try:
            if method == "GET":
                data: dict[str, Any] = Query(request.rel_url.query)
            else:
                raw = await request.read()  # read whole (the host caps it at its client_max_size)
                if len(raw) > MAX_BODY_BYTES:
                    return _error(413, f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB")
                data = parse_json_body(raw)
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
        except (ValueError, RecursionError, OverflowError) as exc:
            return _error(400, str(exc) or type(exc).__name__)
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
    if len(overrides) > MAX_NAMES:
        raise BadRequest(f"overrides: at most {MAX_NAMES} captions per request")
    return overrides


def _scan(root: Path, data: dict[str, Any], skipped: list[tuple[str, str]] | None = None):
    ext, recursive = _ext(data), flag(data, "recursive", False)
    with _scan_lock:  # the cache is shared by the server's worker threads
        return scan_folder(str(root), ext, recursive, _scan_cache, skipped)


def list_folder(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    offset, limit = whole(data, "offset", 0, 0, 10**9), whole(data, "limit", 200, 0, MAX_PAGE)
    flt, selection, with_edits = Filter.from_dict(data.get("filter")), names(data, "selection"), \
        flag(data, "with_edits", False)
    local_excluded = names(data, "excluded_names")
    edits = read_edits(str(root))
    skipped: list[tuple[str, str]] = []
    entries = with_overrides(_scan(root, data, skipped),
                             _overrides(data))
    if local_excluded is not None:  # the editor's unsaved exclusions replace the saved ones
        edits.excluded = set(local_excluded)
    listing: Listing = list_page(entries, flt, edits.excluded, offset, limit)
    picked = set(selection or [])
    selection_tags = entry_tag_counts(e for e in entries if e.name in picked) if picked else None
    return {"folder": str(root), "total": listing.total,
            "selection_tags": selection_tags.most_common() if selection_tags is not None else None, "matched": len(listing.matched),
            "offset": offset, "items": [_entry_json(e, edits) for e in listing.page],
            "tags": listing.dataset_tags.most_common(), "matched_tags": listing.matched_tags.most_common(),
            "excluded": len(edits.excluded), "edits_version": edits.version,
            "edits": {"excluded": sorted(edits.excluded), "crops": {k: list(v) for k, v in edits.crops.items()}}
            if with_edits else None,
            "skipped": [{"name": name, "reason": reason} for name, reason in skipped[:_SKIPPED_SHOWN]],
            "skipped_count": len(skipped)}


def thumbnail(data: dict[str, Any]) -> web.Response:
    root = folder_of(data)
    path = resolve_image(str(root), text(data, "name", ""))
    size = whole(data, "size", 256, 1, 4096)
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
    if not isinstance(captions, list) or len(captions) > MAX_NAMES:
        raise BadRequest(f"captions: expected a list of {{name, text, base}} (at most {MAX_NAMES})")
    changes = [caption_save.CaptionChange.from_dict(c) for c in captions]
    edits = _edits_from(data["edits"]) if data.get("edits") is not None else None
    result = caption_save.save(str(root), changes, _ext(data), edits=edits,
                               edits_base=text(data, "edits_base", None, optional=True),
                               force=flag(data, "force", False))
    return _save_json(result)


def bulk_edit(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    op = EditOp.from_dict(data.get("op"))
    dry_run = flag(data, "dry_run", True)
    overrides = _overrides(data)
    if overrides and not dry_run:
        raise BadRequest("overrides: save the unsaved captions first, or use dry_run")
    wanted, excluded_names = names(data, "names"), names(data, "excluded_names")
    flt = Filter.from_dict(data.get("filter"))
    ext = _ext(data)
    entries = with_overrides(_scan(root, data), overrides)
    if wanted is not None:
        wanted_set = set(wanted)
        targets = [e for e in entries if e.name in wanted_set]
    else:
        excluded = set(excluded_names) if excluded_names is not None else read_edits(str(root)).excluded
        targets = list_page(entries, flt, excluded, 0, 0).matched
    changed = plan_bulk({e.name: e.caption for e in targets}, op)
    answer: dict[str, Any] = {"considered": len(targets), "changed": len(changed), "dry_run": dry_run}
    if dry_run:
        answer["captions"] = changed
        answer["versions"] = {e.name: e.version for e in targets if e.name in changed}
        answer["before"] = {e.name: e.caption for e in targets if e.name in changed}
        return answer
    versions = {e.name: e.version for e in targets}
    result = caption_save.save(str(root), [caption_save.CaptionChange(n, t, versions[n]) for n, t in changed.items()],
                               ext, label=f"bulk {op.kind}")
    answer.update(_save_json(result))
    return answer


def _update_edits(data: dict[str, Any], change: Callable[[Edits], None]) -> dict[str, Any]:
    root = folder_of(data)
    base, force = text(data, "edits_base", None, optional=True), flag(data, "force", False)
    with caption_save.folder_lock(str(root)):
        edits = read_edits(str(root))
        if edits.version != base and not force:
            raise ConflictError("exclusions/crops of this folder were changed elsewhere since you loaded them; "
                                "reload to see them", [{"name": SIDECAR_NAME, "kind": "edits",
                                                        "excluded": sorted(edits.excluded),
                                                        "crops": {k: list(v) for k, v in edits.crops.items()}}])
        change(edits)
        written = write_edits(str(root), edits, edits.version)
    return {"edits_version": written.version, "excluded": sorted(written.excluded),
            "crops": {k: list(v) for k, v in written.crops.items()}}


def set_exclusions(data: dict[str, Any]) -> dict[str, Any]:
    chosen = names(data, "names", required=True)
    excluded = flag(data, "excluded", True)
    root = folder_of(data)
    for name in chosen:
        resolve_image(str(root), name)

    def change(edits: Edits) -> None:
        if excluded:
            edits.excluded.update(chosen)
        else:
            edits.excluded.difference_update(chosen)

    return _update_edits(data, change)


def set_crop(data: dict[str, Any]) -> dict[str, Any]:
    root = folder_of(data)
    name = text(data, "name", "")
    path = resolve_image(str(root), name)
    box = None if data.get("box") is None else validate_box(data.get("box"))
    if box is not None:
        header = read_header(path)
        _, _, width, height = crop_pixels(box, header.width, header.height)
        if min(width, height) < min(MIN_CROP_PIXELS, header.width, header.height):
            raise BadRequest(f"box: the crop would be {width}x{height} pixels of {name!r}; keep at least "
                             f"{MIN_CROP_PIXELS} pixels on each side")

    def change(edits: Edits) -> None:
        if box is None:
            edits.crops.pop(name, None)
        else:
            edits.crops[name] = box

    return _update_edits(data, change)


def restore_points(data: dict[str, Any]) -> dict[str, Any]:
    return {"points": caption_save.list_restore_points(str(folder_of(data)))}


def restore_point(data: dict[str, Any]) -> dict[str, Any]:
    result = caption_save.restore(str(folder_of(data)), text(data, "id", ""))
    return _save_json(result)


def vocabulary(data: dict[str, Any]) -> dict[str, Any]:
    """Tag names from the first installed WD14 tagger's selected_tags.csv (empty when none)."""
    from ..hypernet.tagger.files import find_taggers
    from ..hypernet.tagger.tags import format_tag, load_tag_table

    paths.register_model_folders()
    for name, files in sorted(find_taggers(paths.model_folders(paths.TAGGER_FOLDER)).items()):
        try:
            table = load_tag_table(files.tags_path)
        except (OSError, ValueError) as exc:
            logger.warning("dataset editor: tags of tagger %s unreadable: %s", name, exc)
            continue
        return {"tagger": name, "tags": [format_tag(t, True, False) for t in table.names]}
    return {"tagger": None, "tags": []}


def folders(data: dict[str, Any]) -> dict[str, Any]:
    """The allowed roots, and subfolders of the input folder holding images (for the sidebar)."""
    base = paths.input_directory()
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
    return {"roots": [str(r) for r in allowed_roots()], "config_file": str(paths.user_directory() / CONFIG_NAME),
            "folders": found}


ROUTES = (("POST", "list", list_folder), ("GET", "thumbnail", thumbnail), ("POST", "save", save_captions),
          ("POST", "bulk", bulk_edit), ("POST", "exclusions", set_exclusions), ("POST", "crop", set_crop),
          ("GET", "restore_points", restore_points), ("POST", "restore", restore_point),
          ("GET", "vocabulary", vocabulary), ("GET", "folders", folders))


def register() -> bool:
    """Add the editor's routes to the host server (a no-op without one)."""
    done = [routes.add_route(method, f"{PREFIX}/{name}", _answer(work, method)) for method, name, work in ROUTES]
    return all(done)


register()
