"""LoadDataset core: scan a folder into a Dataset without decoding pixels.

Scanning uses `os.scandir` (one listing per folder; caption files are matched against that
listing, so a missing caption costs no system call) and PIL's lazy open for the size. Each good
image becomes one compact `DatasetItem`; every rejected file is listed with its reason.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..util.paths import is_within
from .caption_ext import validate_caption_extension
from .captions_io import caption_from_filename, compile_word_regex, read_caption_file
from .dataset import Dataset, DatasetItem
from .folder_walk import is_real_dir, walk_sorted
from .images import BAD_REASONS, DEFAULT_MAX_PIXELS, SUPPORTED_EXTENSIONS, BadImageError, read_header

log = logging.getLogger(__name__)

ON_BAD_FILE = ("skip", "fail")
MISSING_CAPTION = ("empty", "filename")
_REPEATS_FOLDER = re.compile(r"^(\d+)_(.+)$")
_CALLBACK_EVERY = 256
_REPORT_LIST_LIMIT = 50

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class BadFile:
    """A file that was not loaded: `reason` is a key of images.BAD_REASONS."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class LoadResult:
    """What load_dataset returns: the dataset, a human report and the numbers behind it."""

    dataset: Dataset
    report: str
    bad_files: list[BadFile] = field(default_factory=list)
    caption_fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class _Candidate:
    folder: str
    name: str
    names_in_folder: frozenset[str]
    repeats: int | None
    is_symlink: bool


def _validate(directory: str, caption_extension: str, on_bad_file: str, missing_caption: str,
              max_pixels: int) -> str:
    if not isinstance(directory, (str, os.PathLike)) or not str(directory).strip():
        raise ValueError("directory is empty; give the folder that holds the training images")
    directory = os.fspath(directory)
    if not os.path.isabs(directory):
        raise ValueError(f"directory {directory!r} must be an absolute path "
                         "(the node resolves paths relative to ComfyUI's input folder)")
    if not os.path.exists(directory):
        raise FileNotFoundError(f"dataset directory {directory} does not exist; check the path")
    if not os.path.isdir(directory):
        raise ValueError(f"dataset directory {directory} is a file, not a folder; "
                         "give the folder that holds the images")
    validate_caption_extension(caption_extension)
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file={on_bad_file!r} is not valid; use 'skip' "
                         "('skip and report') or 'fail'")
    if missing_caption not in MISSING_CAPTION:
        raise ValueError(f"missing_caption={missing_caption!r} is not valid; use one of {MISSING_CAPTION}")
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels={max_pixels!r} must be a positive integer")
    return os.path.abspath(directory)


def _folder_repeats(root: str, folder: str) -> int | None:
    """Repeats from the nearest `N_name` folder between the image and the root (root excluded)."""
    rel = os.path.relpath(folder, root)
    if rel == ".":
        return None
    for part in reversed(rel.split(os.sep)):
        match = _REPEATS_FOLDER.match(part)
        if match and int(match.group(1)) >= 1:
            return int(match.group(1))
    return None


def _follows(entry: os.DirEntry) -> bool | None:
    """For a symlink: whether it leads to a folder; None when it cannot be followed (a loop)."""
    try:
        return entry.is_dir()
    except OSError:
        return None


def _walk(root: str, recursive: bool, max_depth: int | None, repeats_mode: bool,
          stats: Counter, unfollowable: list[str]) -> list[_Candidate]:
    """Deterministic listing: files of a folder sorted by name, then its subfolders sorted."""
    candidates: list[_Candidate] = []
    descend = None if recursive else (max_depth or 0)
    for folder, depth, entries in walk_sorted(root, descend):
        if isinstance(entries, OSError):
            if folder == root:
                raise FileNotFoundError(f"cannot list dataset directory {root}: {entries}") from entries
            log.warning("cannot list %s: %s", folder, entries)
            stats["unlistable_folders"] += 1
            continue
        names = frozenset(e.name for e in entries)
        repeats = _folder_repeats(root, folder) if repeats_mode else None
        subfolders = 0
        for entry in entries:
            if entry.name.startswith("."):
                stats["hidden_entries"] += 1
                continue
            if is_real_dir(entry):
                subfolders += 1
                continue
            if entry.is_symlink():
                leads_to_folder = _follows(entry)
                if leads_to_folder is None:
                    unfollowable.append(entry.path)
                    continue
                if leads_to_folder:
                    stats["symlinked_folders_not_followed"] += 1
                    continue
            ext = os.path.splitext(entry.name)[1].lower()
            if ext in SUPPORTED_EXTENSIONS:
                candidates.append(_Candidate(folder, entry.name, names, repeats, entry.is_symlink()))
            else:
                stats["other_files"] += 1
        if descend is not None and depth >= descend:
            stats["subfolders_not_scanned"] += subfolders
    return candidates


def _inside(path: str, root_real: str) -> bool:
    return is_within(os.path.realpath(path), root_real)


def scan_depth(recursive: bool, repeats_from_folder_names: bool) -> int | None:
    """How deep load_dataset looks: all levels, one level (kohya `N_name` folders), or the root only."""
    if recursive:
        return None
    return 1 if repeats_from_folder_names else 0


def load_dataset(
    directory: str | os.PathLike,
    *,
    recursive: bool = False,
    caption_extension: str = ".txt",
    repeats_from_folder_names: bool = False,
    on_bad_file: str = "skip",
    missing_caption: str = "empty",
    filename_word_regex: str = "",
    filename_join: str = " ",
    verify: str = "fast",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> LoadResult:
    """Scan `directory` (absolute) into a Dataset; pixels are not decoded.

    - Images: png, jpg/jpeg/jpe/jfif, webp, bmp, tif/tiff, gif; hidden files are ignored.
    - Captions: `<stem><caption_extension>` in the same folder. A missing caption gives "" or,
      with missing_caption="filename", A1111's file-name caption (leading digits/dashes removed,
      optionally only `filename_word_regex` matches joined by `filename_join`).
    - repeats_from_folder_names: kohya layout; images inside an `N_name` folder get repeats N
      (nearest such folder below the root). Subfolders of the root are then scanned even when
      recursive is False (one level, as kohya does); with recursive, all levels.
    - Bad files (zero-byte, corrupt, truncated, decompression bombs, symlinks leaving the folder)
      are listed in the result and report with their reason (on_bad_file="skip") or raise
      ValueError (on_bad_file="fail"). See images.read_header for `verify`.
    - progress(done, total) is called every few hundred files; should_cancel() is polled as
      often, and a cancel returns the items scanned so far with `cancelled=True`.

    Raises FileNotFoundError for a missing folder and ValueError when it holds no usable image.
    """
    on_bad_file = "skip" if on_bad_file == "skip and report" else on_bad_file
    if verify not in ("fast", "full"):
        raise ValueError(f"verify={verify!r} is not valid; use 'fast' or 'full'")
    root = _validate(directory, caption_extension, on_bad_file, missing_caption, max_pixels)
    word_regex = compile_word_regex(filename_word_regex)
    root_real = os.path.realpath(root)
    stats: Counter = Counter()
    max_depth = 1 if repeats_from_folder_names else None
    unfollowable: list[str] = []
    candidates = _walk(root, recursive, max_depth, repeats_from_folder_names, stats, unfollowable)
    total = len(candidates)
    items: list[DatasetItem] = []
    bad: list[BadFile] = []
    outside_captions: list[str] = []
    for path in unfollowable:
        if on_bad_file == "fail":
            raise ValueError(f"{path}: {BAD_REASONS['symlink_loop']}; remove the link, or set on_bad_file to "
                             "'skip and report'")
        bad.append(BadFile(path, "symlink_loop"))
        stats["skipped_symlink_loop"] += 1
    fallbacks: list[tuple[str, str]] = []
    repeats_by_folder: Counter = Counter()
    cancelled = False
    for index, cand in enumerate(candidates):
        if index % _CALLBACK_EVERY == 0:
            if should_cancel is not None and should_cancel():
                cancelled = True
                break
            if progress is not None:
                progress(index, total)
        path = os.path.join(cand.folder, cand.name)
        try:
            if cand.is_symlink and not _inside(path, root_real):
                raise BadImageError(path, "outside_folder", os.path.realpath(path))
            header = read_header(path, max_pixels=max_pixels, verify=verify)
        except BadImageError as exc:
            if on_bad_file == "fail":
                raise ValueError(f"{exc}; remove or repair the file, or set on_bad_file to "
                                 "'skip and report'") from exc
            bad.append(BadFile(path, exc.reason, exc.detail))
            stats[f"skipped_{exc.reason}"] += 1
            continue
        stem = os.path.splitext(cand.name)[0]
        caption_name = stem + caption_extension
        caption = ""
        if caption_name in cand.names_in_folder:
            caption_path = os.path.join(cand.folder, caption_name)
            try:
                if os.path.islink(caption_path) and not _inside(caption_path, root_real):
                    # Like images: a caption linked from outside the dataset folder is never read.
                    log.warning("caption %s is a symlink to %s, outside the dataset folder; not read",
                                caption_path, os.path.realpath(caption_path))
                    stats["captions_outside_folder"] += 1
                    outside_captions.append(caption_path)
                    read = None
                else:
                    read = read_caption_file(caption_path)
            except OSError as exc:
                log.warning("cannot read caption %s: %s", caption_path, exc)
                stats["captions_unreadable"] += 1
                read = None
            if read is not None:
                caption = read.text
                stats["captions_from_file"] += 1
                if not caption:
                    stats["captions_empty_file"] += 1
                if read.fallback:
                    stats["captions_fallback_encoding"] += 1
                    fallbacks.append((caption_path, read.encoding))
        else:
            stats["captions_missing"] += 1
            if missing_caption == "filename":
                caption = caption_from_filename(stem, word_regex, filename_join)
                stats["captions_from_filename"] += 1
        repeats = cand.repeats if cand.repeats is not None else 1
        if repeats_from_folder_names:
            repeats_by_folder[(os.path.relpath(cand.folder, root), cand.repeats)] += 1
        items.append(DatasetItem(path, header.width, header.height, caption, repeats))
    if progress is not None and not cancelled:
        progress(total, total)
    stats["images"] = len(items)
    stats["candidates"] = total
    stats["skipped"] = len(bad)
    if not items and not cancelled:
        _raise_empty(root, total, bad, recursive, stats)
    options = {"step": "load", "directory": root, "recursive": recursive,
               "caption_extension": caption_extension,
               "repeats_from_folder_names": repeats_from_folder_names,
               "missing_caption": missing_caption, "verify": verify}
    dataset = Dataset(items, root, [options])
    report = format_load_report(root, recursive, stats, bad, fallbacks, repeats_by_folder, cancelled,
                                outside_captions)
    return LoadResult(dataset, report, bad, fallbacks, dict(stats), cancelled)


def _raise_empty(root: str, total: int, bad: list[BadFile], recursive: bool, stats: Counter) -> None:
    if total == 0:
        hint = "" if recursive or not stats.get("subfolders_not_scanned") else \
            f"; {stats['subfolders_not_scanned']} subfolder(s) were not scanned - enable recursive"
        raise ValueError(
            f"dataset directory {root} contains no images "
            f"({', '.join(sorted(SUPPORTED_EXTENSIONS))}){hint}")
    listing = "; ".join(f"{b.path}: {BAD_REASONS.get(b.reason, b.reason)}" for b in bad[:5])
    raise ValueError(f"none of the {total} image files in {root} is usable: {listing}"
                     + (" ..." if len(bad) > 5 else ""))


def format_load_report(root: str, recursive: bool, stats: Counter, bad: list[BadFile],
                       fallbacks: list[tuple[str, str]], repeats_by_folder: Counter,
                       cancelled: bool, outside_captions: list[str] | None = None) -> str:
    """Human-readable summary with counts per outcome."""
    lines = [f"LoadDataset: {stats['images']} image(s) from {root}"
             f" (recursive: {'yes' if recursive else 'no'})"]
    if cancelled:
        lines.append(f"CANCELLED after {stats['images'] + stats['skipped']} of "
                     f"{stats['candidates']} files; the dataset holds only those.")
    lines.append(f"Skipped: {stats['skipped']}" + ("" if not bad else " (" + ", ".join(
        f"{BAD_REASONS[r]}: {stats[f'skipped_{r}']}" for r in BAD_REASONS
        if stats.get(f"skipped_{r}")) + ")"))
    captions = [f"from file {stats['captions_from_file']}"]
    if stats.get("captions_empty_file"):
        captions.append(f"empty file {stats['captions_empty_file']}")
    captions.append(f"missing {stats['captions_missing']}")
    if stats.get("captions_from_filename"):
        captions.append(f"of which from file name {stats['captions_from_filename']}")
    if stats.get("captions_fallback_encoding"):
        captions.append(f"not UTF-8 (decoded with a fallback) {stats['captions_fallback_encoding']}")
    if stats.get("captions_unreadable"):
        captions.append(f"unreadable {stats['captions_unreadable']}")
    if stats.get("captions_outside_folder"):
        captions.append(f"not read (symlink outside the folder) {stats['captions_outside_folder']}")
    lines.append("Captions: " + ", ".join(captions))
    if repeats_by_folder:
        parts = [f"{folder}: {count} image(s) x{rep if rep is not None else '1 (no N_ prefix)'}"
                 for (folder, rep), count in sorted(repeats_by_folder.items(), key=lambda kv: kv[0][0])]
        lines.append("Repeats: " + "; ".join(parts))
    ignored = []
    for key, label in (("other_files", "non-image files"), ("hidden_entries", "hidden entries"),
                       ("subfolders_not_scanned", "subfolders not scanned"),
                       ("symlinked_folders_not_followed", "symlinked folders not followed"),
                       ("unlistable_folders", "unlistable folders")):
        if stats.get(key):
            ignored.append(f"{label} {stats[key]}")
    if ignored:
        lines.append("Ignored: " + ", ".join(ignored))
    for b in bad[:_REPORT_LIST_LIMIT]:
        lines.append(f"  skipped {b.path}: {BAD_REASONS.get(b.reason, b.reason)}"
                     + (f" ({b.detail})" if b.detail else ""))
    if len(bad) > _REPORT_LIST_LIMIT:
        lines.append(f"  ... and {len(bad) - _REPORT_LIST_LIMIT} more skipped files")
    for path, encoding in fallbacks[:_REPORT_LIST_LIMIT]:
        lines.append(f"  caption {path} is not UTF-8; decoded as {encoding} (re-save it as UTF-8)")
    for path in (outside_captions or [])[:_REPORT_LIST_LIMIT]:
        lines.append(f"  caption {path} links outside the dataset folder; not read (the image has no caption)")
    if len(fallbacks) > _REPORT_LIST_LIMIT:
        lines.append(f"  ... and {len(fallbacks) - _REPORT_LIST_LIMIT} more non-UTF-8 captions")
    return "\n".join(lines)
