"""Write tag captions next to images (`<stem><caption_extension>`), atomically.

Modes: off (never touch captions) | overwrite | existing_first (the existing caption, then the new
tags) | new_first (the new tags, then the existing caption) | only_missing (write only when no
caption file exists). The two merges drop duplicate tags, compared case-, underscore- and
escape-insensitively; the first occurrence wins. "existing_first"/"new_first" mean the same in
Preprocess's existing_caption; the old names append/prepend (which meant the opposite of
Preprocess's) are still accepted from saved workflows.
The image file itself is only ever read.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from ..data.caption_ext import validate_caption_extension
from ..util.atomic import atomic_write_text
from ..util.caption_tags import join_tags, split_tags
from .tags import normalize_tag

logger = logging.getLogger(__name__)

CAPTION_MODES = ("off", "overwrite", "existing_first", "new_first", "only_missing")
MERGE_MODES = ("existing_first", "new_first")
LEGACY_CAPTION_MODES = {"append": "existing_first", "prepend": "new_first"}  # names before the rename


def validate_caption_mode(mode: str) -> str:
    """The mode, with a legacy name (append/prepend) turned into today's; ValueError otherwise."""
    mode = LEGACY_CAPTION_MODES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in CAPTION_MODES:
        raise ValueError(f"write_captions must be one of {CAPTION_MODES}, got {mode!r}")
    return mode


def caption_path_for(image_path: str | os.PathLike, caption_extension: str = ".txt") -> Path:
    """`<folder>/<stem><caption_extension>`; refuses extensions that would hit the image itself."""
    image_path = Path(image_path)
    ext = validate_caption_extension(caption_extension)
    target = image_path.with_name(image_path.stem + ext)
    if target.name.lower() == image_path.name.lower():
        raise ValueError(
            f"caption_extension {ext!r} would overwrite the image {image_path}; use '.txt' or '.caption'"
        )
    return target


def dedupe_tags(tags: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        key = normalize_tag(tag)
        if key and key not in seen:
            seen.add(key)
            out.append(tag.strip())
    return out


def merge_caption(existing: str, new_tags: Sequence[str], mode: str) -> str:
    """Caption text for `mode` given the old caption text and the new tags."""
    mode = validate_caption_mode(mode)
    old = split_tags(existing or "")
    new = [t for t in new_tags if t.strip()]
    if mode == "existing_first":
        return join_tags(dedupe_tags(old + new))
    if mode == "new_first":
        return join_tags(dedupe_tags(new + old))
    return join_tags(t.strip() for t in new)


def _read_caption(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"existing caption {path} is not UTF-8 text ({exc}); convert it to UTF-8 or use "
            "write_captions='overwrite'"
        ) from exc


class CaptionClaims:
    """`a.jpg` and `a.png` in one folder share `a.txt`: the first image (in dataset order) writes
    it, and every later one is reported instead of merged into it silently."""

    def __init__(self, caption_extension: str = ".txt"):
        self.caption_extension = caption_extension
        self._owner: dict[Path, Path] = {}

    def claim(self, image_path: str | os.PathLike) -> str | None:
        """None when `image_path` may write its caption; else a note naming the image that owns it."""
        image_path = Path(image_path)
        target = caption_path_for(image_path, self.caption_extension)
        key = Path(os.path.normcase(os.path.abspath(target)))
        owner = self._owner.setdefault(key, image_path)
        if owner == image_path:
            return None
        return (f"shares {target.name} with {owner.name}; its tags were not written there (rename one of the "
                "images to give each its own caption file)")


def _refuse_outside_link(target: Path) -> None:
    """Like image symlinks: a caption linking out of its image's folder is never read or replaced."""
    if target.is_symlink():
        real = Path(os.path.realpath(target))
        folder = Path(os.path.realpath(target.parent))
        if real.parent != folder and folder not in real.parents:
            raise ValueError(f"caption file {target} is a symlink to {real}, outside the image's folder; it is "
                             "neither read nor replaced. Replace the link with a plain caption file")


def write_caption(
    image_path: str | os.PathLike,
    tags: Sequence[str],
    mode: str,
    caption_extension: str = ".txt",
) -> tuple[Path, str]:
    """Write (or not) the caption for one image. Returns (caption path, action taken).

    Actions: 'off', 'kept_existing' (only_missing and a caption exists), 'written'
    (new file), 'overwritten', 'merged' (existing_first / new_first).
    """
    mode = validate_caption_mode(mode)
    target = caption_path_for(image_path, caption_extension)
    if mode == "off":
        return target, "off"
    exists = target.is_file()
    if mode == "only_missing" and (exists or target.is_symlink()):
        return target, "kept_existing"
    _refuse_outside_link(target)
    if mode == "only_missing" and exists:
        return target, "kept_existing"
    if mode in MERGE_MODES and exists:
        text = merge_caption(_read_caption(target), tags, mode)
        action = "merged"
    else:
        text = merge_caption("", tags, "overwrite")
        action = "overwritten" if exists else "written"
    atomic_write_text(target, text)
    logger.debug("caption %s: %s", action, target)
    return target, action
