"""The editor's view of a dataset folder: images with their captions, filters, tag counts, pages.

One `os.scandir` per folder; a caption is read only when the listing holds it. Names are the
image paths relative to the folder with '/' separators: metadata for the client, resolved back
to files only through `resolve_image` (which refuses anything that is not a listed image).
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..util.paths import is_within
from .captions_io import decode_caption_bytes
from .edit import split_tags, tag_name, tag_names
from .folder_walk import is_real_dir, walk_sorted
from .images import SUPPORTED_EXTENSIONS

MATCH_MODES = ("all", "any")
MAX_PAGE = 10_000
MAX_FILTER_TAGS = 10_000


def content_hash(raw: bytes | None) -> str | None:
    """The version tag of a caption file's bytes (None: no file); what conflict checks compare."""
    return None if raw is None else hashlib.sha1(raw).hexdigest()[:16]


@dataclass(slots=True)
class Entry:
    """One image: `name` (relative, '/'), its caption text and the caption file's version."""

    name: str
    caption: str
    has_caption: bool
    version: str | None
    names: frozenset[str] | None = None  # tag names, filled in by a cached scan

    @property
    def tags(self) -> list[str]:
        return split_tags(self.caption)

    def tag_names(self) -> frozenset[str] | set[str]:
        return self.names if self.names is not None else tag_names(self.caption)


class ScanCache:
    """Parsed captions of recent scans, reused while a caption file's stat is unchanged (same
    inode, size, mtime and ctime: an atomic save or any rewrite changes at least one of them), so
    paging and filtering a big folder does not re-read and re-parse every caption each time.
    Conflict checks on save always read the files themselves."""

    def __init__(self, max_files: int = 200_000):
        self.max_files = max_files
        self._files: dict[str, tuple[tuple[int, int, int, int], str, str | None, frozenset[str]]] = {}

    def read(self, path: str) -> tuple[str, str | None, frozenset[str]] | None:
        """(text, version, tag names) of a caption file; None when it cannot be read."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        hit = self._files.get(path)
        if hit is not None and hit[0] == signature:
            return hit[1], hit[2], hit[3]
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            return None
        text = decode_caption_bytes(raw).text
        value = (signature, text, content_hash(raw), frozenset(tag_names(text)))
        if len(self._files) >= self.max_files:
            self._files.clear()
        self._files[path] = value
        return value[1], value[2], value[3]


def is_image_name(name: str) -> bool:
    """Whether a file name is one the listing shows as an image (not hidden, a supported extension)."""
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and not name.startswith(".") and "." + ext.lower() in SUPPORTED_EXTENSIONS


def unaddressable_reason(name: str) -> str | None:
    """Why the routes cannot name this image (a request could never send its name back), or None."""
    if "\\" in name:
        return "its name contains a backslash, which the editor's routes do not accept in names; rename it"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8; rename it"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "its name contains control characters; rename it"
    return None


def printable_name(name: str) -> str:
    """A name safe to show in JSON: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def caption_name(image_name: str, caption_extension: str) -> str:
    """The caption file's relative name for an image's relative name."""
    return os.path.splitext(image_name)[0] + caption_extension


def scan_folder(root: str, caption_extension: str = ".txt", recursive: bool = False,
                cache: ScanCache | None = None, skipped: list[tuple[str, str]] | None = None) -> list[Entry]:
    """Every image under `root` (sorted; hidden files and symlinked folders skipped). Captions are
    read through `cache` (a fresh one when None: every caption is read). Images whose names a
    request could not address are left out and added to `skipped` as (printable name, reason)."""
    cache = ScanCache() if cache is None else cache
    entries: list[Entry] = []
    for folder, _, listing in walk_sorted(root, None if recursive else 0):
        if isinstance(listing, OSError):
            if folder == root:
                raise FileNotFoundError(f"cannot list dataset folder {root}: {listing}") from listing
            continue
        names = {e.name for e in listing}
        rel_folder = os.path.relpath(folder, root)
        prefix = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        folder_prefix = os.path.join(folder, "")
        for entry in listing:
            name = entry.name
            stem, dot, ext = name.rpartition(".")
            if not dot or name[0] == "." or "." + ext.lower() not in SUPPORTED_EXTENSIONS or is_real_dir(entry):
                continue
            reason = unaddressable_reason(prefix + name)
            if reason is not None:
                if skipped is not None:
                    skipped.append((printable_name(prefix + name), reason))
                continue
            caption_file = stem + caption_extension
            cached = cache.read(folder_prefix + caption_file) if caption_file in names else None
            entries.append(Entry(prefix + name, "", False, None) if cached is None else
                           Entry(prefix + name, cached[0], True, cached[1], cached[2]))
    return entries


@dataclass(frozen=True)
class Filter:
    """What the gallery shows: tags to include (all/any), tags to exclude, text in captions,
    only uncaptioned images, and whether excluded images are shown (None: both)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    mode: str = "all"
    text: str = ""
    uncaptioned: bool = False
    excluded: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in MATCH_MODES:
            raise ValueError(f"filter.mode: {self.mode!r}; use 'all' (AND) or 'any' (OR)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Filter":
        data = data or {}
        if not isinstance(data, Mapping):
            raise ValueError("filter: expected an object")

        def tags(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or len(value) > MAX_FILTER_TAGS or \
                    not all(isinstance(v, str) for v in value):
                raise ValueError(f"filter.{key}: expected a list of tags (text, at most {MAX_FILTER_TAGS})")
            return tuple(tag_name(v.strip()) for v in value if v.strip())

        def text(key: str, default: str) -> str:
            value = data.get(key)
            if value is None:
                return default
            if not isinstance(value, str):
                raise ValueError(f"filter.{key}: expected text, got {type(value).__name__} {value!r}")
            return value or default

        def flag(key: str) -> bool | None:
            value = data.get(key)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"filter.{key}: expected true, false or null, got {value!r}")
            return value

        return cls(tags("include"), tags("exclude"), text("mode", "all"), text("text", ""),
                   bool(flag("uncaptioned")), flag("excluded"))

    @property
    def is_empty(self) -> bool:
        return self == Filter()

    def matches(self, caption: str, is_excluded: bool, tags: frozenset[str] | None = None) -> bool:
        if self.excluded is not None and self.excluded != is_excluded:
            return False
        if self.uncaptioned:
            return not caption.strip()
        if self.text and self.text.casefold() not in caption.casefold():
            return False
        if self.include or self.exclude:
            names = tag_names(caption) if tags is None else tags
            if self.exclude and not names.isdisjoint(self.exclude):
                return False
            if self.include:
                hits = [t in names for t in self.include]
                return all(hits) if self.mode == "all" else any(hits)
        return True


def tag_counts(captions: Iterable[str]) -> Counter:
    """How many captions name each tag (a tag twice in one caption counts once)."""
    counts: Counter = Counter()
    for caption in captions:
        counts.update(tag_names(caption))
    return counts


def entry_tag_counts(entries: Iterable[Entry]) -> Counter:
    """tag_counts of entries, using the tag names a cached scan already parsed."""
    counts: Counter = Counter()
    for entry in entries:
        counts.update(entry.tag_names())
    return counts


@dataclass
class Listing:
    """One answer of the list route (see `list_page`)."""

    total: int
    matched: list[Entry]
    page: list[Entry]
    dataset_tags: Counter = field(default_factory=Counter)
    matched_tags: Counter = field(default_factory=Counter)


def with_overrides(entries: list[Entry], overrides: Mapping[str, str] | None) -> list[Entry]:
    """Entries with unsaved caption texts (from the editor) in place of the files' texts."""
    if not overrides:
        return entries
    return [Entry(e.name, str(overrides[e.name]), e.has_caption, e.version) if e.name in overrides else e
            for e in entries]


def list_page(entries: list[Entry], flt: Filter, excluded: set[str], offset: int = 0,
              limit: int = 200) -> Listing:
    """Filter, count tags (whole dataset and the matched set) and cut one page."""
    if offset < 0 or not 0 <= limit <= MAX_PAGE:
        raise ValueError(f"offset/limit: {offset}/{limit}; offset >= 0 and 0 <= limit <= {MAX_PAGE}")
    dataset_tags = entry_tag_counts(entries)
    if flt.is_empty:
        matched = entries
        matched_tags = dataset_tags
    else:
        matched = [e for e in entries if flt.matches(e.caption, e.name in excluded, e.names)]
        matched_tags = entry_tag_counts(matched)
    return Listing(len(entries), matched, matched[offset:offset + limit], dataset_tags, matched_tags)


def resolve_image(root: str, name: str, known: Iterable[str] | None = None) -> str:
    """The absolute path of image `name` inside `root`; ValueError for anything else.

    `name` is metadata from a request: it must be a relative '/' path without '..', NUL or
    backslashes, name a supported image, and stay inside `root` after symlinks are resolved.
    """
    if not isinstance(name, str) or not name or unaddressable_reason(name) is not None:
        raise ValueError(f"name {name!r}: give an image name from the listing")
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"name {name!r}: only image names from the listing are accepted (no '..' or "
                         "absolute paths)")
    if os.path.splitext(name)[1].lower() not in SUPPORTED_EXTENSIONS:
        raise ValueError(f"name {name!r} is not an image name")
    if known is not None and name not in known:
        raise FileNotFoundError(f"image {name!r} is not in this dataset folder; reload the list")
    path = os.path.join(root, *parts)
    root_real = os.path.realpath(root)
    real = os.path.realpath(path)
    if not is_within(real, root_real, include_root=False):
        raise PermissionError(f"image {name!r} leads outside the dataset folder; it is not served")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {name!r} is not in this dataset folder; reload the list")
    return path
