"""The one definition of a caption's tags, shared by training, the tagger and the dataset editor.

A caption is a list of tags separated by commas. A comma inside parentheses, brackets or braces
belongs to the tag (`(red, blue:1.2)` is one tag); a backslash escapes the next character, so `\\(`
does not open a bracket; a stray closing bracket never makes the depth negative. Each tag is
trimmed, runs of whitespace inside it become one space, and empty tags are dropped.

`web/datasetEditor/tags.js` is the browser's copy; `tests/cases/split_tags.json` holds the cases
both must agree on (a unit test runs the JS under node).
"""
from __future__ import annotations

import re
from typing import Iterable

_SPECIAL = re.compile(r"\\.|[,()\[\]{}]", re.S)
_NESTING = re.compile(r"[\\(\[{]")
_WIDE_SPACE = re.compile(r"\s\s|[^\S ]")
_SPACES = re.compile(r"\s+")
_OPEN, _CLOSE = "([{", ")]}"


def split_tags(caption: str) -> list[str]:
    """Tags of a caption in order: split at top-level commas, whitespace tidied, empty ones dropped."""
    if not _NESTING.search(caption):  # the common case: no brackets, so every comma separates
        parts = caption.split(",")
    else:
        parts = _split_top_level(caption)
    if _WIDE_SPACE.search(caption):
        parts = [_SPACES.sub(" ", p) for p in parts]
    return [t for t in (p.strip() for p in parts) if t]


def _split_top_level(caption: str) -> list[str]:
    """Comma split that skips commas inside brackets and honours backslash escapes."""
    parts: list[str] = []
    depth = 0
    start = 0
    for match in _SPECIAL.finditer(caption):  # only commas, brackets and escapes matter
        ch = match.group()
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(caption[start:match.start()])
            start = match.end()
    parts.append(caption[start:])
    return parts


def join_tags(tags: Iterable[str]) -> str:
    """A caption from tags, separated by ', ' (the form taggers and A1111 write)."""
    return ", ".join(tags)
