"""Tag operations on comma-separated captions, for the dataset editor (pure text, no file I/O).

A caption's tags are `hypernet.util.caption_tags.split_tags` (commas inside brackets belong to
the tag: `(red, blue:1.2)` is one tag). Tags are compared by
their *name*: the text without surrounding weight syntax, so `(tag:1.2)`, `[tag]` and `tag` all
name `tag`; a replace keeps the weight (`(old:1.2)` -> `(new:1.2)`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..util.caption_tags import join_tags, split_tags
from .regex_budget import full_matches

OPS = ("add", "remove", "replace", "dedupe", "sort")
POSITIONS = ("front", "back")
_OPEN, _CLOSE = "([{", ")]}"
_WEIGHT = re.compile(r"^(?P<open>[(\[{]+)(?P<name>.*?)(?P<weight>:\s*-?[\d.]+)?(?P<close>[)\]}]+)$", re.S)
_NESTING = re.compile(r"[\\(\[{]")
_WIDE_SPACE = re.compile(r"\s\s|[^\S ]")


def tag_names(caption: str) -> set[str]:
    """The set of tag names in a caption (what counts and filters use); fast for plain captions."""
    if not _NESTING.search(caption) and not _WIDE_SPACE.search(caption):
        names = {t.strip() for t in caption.split(",")}
        names.discard("")
        return names
    return {tag_name(t) for t in split_tags(caption)}


def _parts(tag: str) -> tuple[str, str, str]:
    """(prefix, name, suffix): `(cat:1.2)` -> ('(', 'cat', ':1.2)'); a plain tag has no affixes."""
    match = _WEIGHT.match(tag)
    if match is None or len(match.group("open")) != len(match.group("close")):
        return "", tag, ""
    return match.group("open"), match.group("name").strip(), (match.group("weight") or "") + match.group("close")


def tag_name(tag: str) -> str:
    """The tag without weight syntax: what counts, filters and exact matches compare."""
    if not tag or tag[0] not in _OPEN:
        return tag
    return _parts(tag)[1]


def _normalise_new_tags(text: str, field: str) -> list[str]:
    tags = split_tags(text or "")
    if not tags:
        raise ValueError(f"{field}: give a tag (got {text!r})")
    return tags


@dataclass(frozen=True)
class EditOp:
    """One bulk operation.

    kind: add (tags at `position` front/back, skipped where present), remove, replace (exact
    name, or `regex` on the name; `new` may use \\1 groups; an empty `new` removes), dedupe (keep
    the first of each name), sort (by name, case-insensitive).
    """

    kind: str
    tag: str = ""
    new: str = ""
    position: str = "back"
    regex: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OPS:
            raise ValueError(f"op: {self.kind!r} is not an edit; use one of {', '.join(OPS)}")
        if len(self.tag) > MAX_TEXT or len(self.new) > MAX_TEXT:
            raise ValueError(f"op: 'tag' and 'new' are limited to {MAX_TEXT} characters")
        if self.kind == "add":
            _normalise_new_tags(self.tag, "tag")
            if self.position not in POSITIONS:
                raise ValueError(f"position: {self.position!r}; use 'front' or 'back'")
        if self.kind in ("remove", "replace"):
            if not (self.tag or "").strip():
                raise ValueError(f"tag: give the tag to {self.kind}")
            if self.regex:
                _check_regex(self.tag, self.new if self.kind == "replace" else None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EditOp":
        if not isinstance(data, Mapping):
            raise ValueError("op: expected an object like {\"kind\": \"replace\", \"tag\": \"a\", \"new\": \"b\"}")
        regex = data.get("regex", False)
        if regex is not None and not isinstance(regex, bool):
            raise ValueError(f"op.regex: expected true or false, got {regex!r}")
        return cls(kind=_text(data, "kind", ""), tag=_text(data, "tag", ""), new=_text(data, "new", ""),
                   position=_text(data, "position", "back") or "back", regex=bool(regex))

    def matcher(self, table: Mapping[str, str] | None = None):
        """A predicate on tag names for remove/replace (`table`: see `regex_table`)."""
        if self.regex:
            if table is not None:
                return table.__contains__
            pattern = re.compile(self.tag)
            return lambda name: pattern.fullmatch(name) is not None
        wanted = tag_name(self.tag.strip())
        return lambda name: name == wanted


MAX_TEXT = 1000


def _text(data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"op.{key}: expected text, got {type(value).__name__} {value!r}")
    return value


def _check_regex(pattern_text: str, replacement: str | None) -> None:
    """ValueError naming the field when the pattern (or the replacement's group references) is bad."""
    try:
        pattern = re.compile(pattern_text)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"tag: {pattern_text!r} is not a valid regular expression ({exc})") from None
    if replacement is not None:
        try:
            pattern.sub(replacement, "")  # parses the template: \3, a trailing \, \g<x> fail here
        except (re.error, IndexError, OverflowError, RecursionError) as exc:
            raise ValueError(f"new: {replacement!r} is not a valid replacement for {pattern_text!r} ({exc}); "
                             "write \\1 for the first group, \\\\ for a backslash") from None


def regex_table(captions: Iterable[str], op: EditOp) -> dict[str, str]:
    """For a regex op: {tag name: replaced name} of every tag name in `captions` the pattern
    matches, computed with a time budget (see regex_budget)."""
    names = {tag_name(t) for caption in captions for t in split_tags(caption)}
    return full_matches(op.tag, op.new, names)


def _replace_one(tag: str, op: EditOp, table: Mapping[str, str] | None) -> list[str]:
    prefix, name, suffix = _parts(tag)
    if op.regex:
        new_name = table[name] if table is not None else re.sub(op.tag, op.new, name)
    else:
        new_name = op.new.strip()
    new_tags = split_tags(new_name)
    if not new_tags:
        return []
    if len(new_tags) == 1:
        return [f"{prefix}{new_tags[0]}{suffix}"]
    return new_tags


def apply_op(tags: list[str], op: EditOp, table: Mapping[str, str] | None = None) -> list[str]:
    """The tags after `op` (a new list; `tags` is not changed). `table`: a regex op's matches
    from `regex_table` (without it the regex runs here, unbounded)."""
    if op.kind == "add":
        present = {tag_name(t) for t in tags}
        new = [t for t in split_tags(op.tag) if tag_name(t) not in present]
        return new + list(tags) if op.position == "front" else list(tags) + new
    if op.kind == "remove":
        match = op.matcher(table)
        return [t for t in tags if not match(tag_name(t))]
    if op.kind == "replace":
        match = op.matcher(table)
        out: list[str] = []
        for tag in tags:
            out.extend(_replace_one(tag, op, table) if match(tag_name(tag)) else [tag])
        return dedupe(out) if out != tags else out
    if op.kind == "dedupe":
        return dedupe(tags)
    return sorted(tags, key=lambda t: (tag_name(t).casefold(), t))


def dedupe(tags: Iterable[str]) -> list[str]:
    """Keep the first tag of each name, in order."""
    seen: set[str] = set()
    out = []
    for tag in tags:
        name = tag_name(tag)
        if name not in seen:
            seen.add(name)
            out.append(tag)
    return out


def edit_caption(caption: str, op: EditOp, table: Mapping[str, str] | None = None) -> str:
    """The caption after `op`; unchanged text is returned as it was (not re-joined)."""
    tags = split_tags(caption)
    new = apply_op(tags, op, table)
    return caption if new == tags else join_tags(new)


def plan_bulk(captions: Mapping[str, str], op: EditOp) -> dict[str, str]:
    """{name: new caption} for the captions `op` changes (a dry run: nothing is written). A regex
    op is matched with a time budget (RegexTooSlow when it runs too long)."""
    table = regex_table(captions.values(), op) if op.regex and op.kind in ("remove", "replace") else None
    changed: dict[str, str] = {}
    for name, caption in captions.items():
        new = edit_caption(caption, op, table)
        if new != caption:
            changed[name] = new
    return changed
