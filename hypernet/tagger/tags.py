"""Tag table (selected_tags.csv) and post-processing of model probabilities into tag lists.

Pure numpy/stdlib; no onnxruntime. Rules and defaults follow the three reference taggers
(pythongosssss ComfyUI node, toriato A1111 extension, kohya sd-scripts); deviations are noted
where they are made.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import TaggerFilesMissingError, TaggerModelError

logger = logging.getLogger(__name__)

CATEGORY_GENERAL = 0
CATEGORY_CHARACTER = 4
CATEGORY_RATING = 9

SORT_MODES = ("confidence", "alphabetical", "csv")

# Tags whose underscores are part of the face, not word separators (toriato's list). Together with
# kohya's rule (tags of 3 characters or fewer keep underscores) this protects kaomoji.
KAOMOJI = frozenset({
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
    ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||",
})


@dataclass(frozen=True)
class TagTable:
    """Rows of selected_tags.csv; row i names output i of the model."""

    names: tuple[str, ...]
    categories: tuple[int, ...]
    path: Path | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.categories):
            raise ValueError("TagTable: names and categories must have the same length")

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, category: int) -> list[int]:
        return [i for i, c in enumerate(self.categories) if c == category]


def load_tag_table(path: str | os.PathLike) -> TagTable:
    """Read a `tag_id,name,category,count` CSV (only `name` and `category` are used)."""
    path = Path(path)
    if not path.is_file():
        raise TaggerFilesMissingError(
            f"tags CSV {path} not found; download selected_tags.csv from the model's Hugging Face "
            f"repo and save it as {path}"
        )
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            if "name" not in fields or "category" not in fields:
                raise TaggerModelError(
                    f"tags CSV {path} has header {fields!r}; expected 'tag_id,name,category,count' — "
                    "replace it with the model's selected_tags.csv"
                )
            reader.fieldnames = fields
            names: list[str] = []
            cats: list[int] = []
            for line_no, row in enumerate(reader, start=2):
                name = (row.get("name") or "").strip()
                try:
                    cat = int((row.get("category") or "").strip())
                except ValueError:
                    raise TaggerModelError(
                        f"tags CSV {path} line {line_no}: category {row.get('category')!r} is not an "
                        "integer; replace the file with the model's selected_tags.csv"
                    ) from None
                if not name:
                    raise TaggerModelError(f"tags CSV {path} line {line_no}: empty tag name; replace the file")
                names.append(name)
                cats.append(cat)
    except UnicodeDecodeError as exc:
        raise TaggerModelError(f"tags CSV {path} is not UTF-8 text ({exc}); replace it with selected_tags.csv") from exc
    if not names:
        raise TaggerModelError(f"tags CSV {path} has no rows; replace it with the model's selected_tags.csv")
    return TagTable(tuple(names), tuple(cats), path)


@dataclass
class TagOptions:
    """What to keep and how to write it. Defaults follow the references (see module doc)."""

    general_threshold: float = 0.35
    character_threshold: float = 0.85
    exclude_tags: str = ""
    replace_underscores: bool = True
    escape_brackets: bool = True
    sort: str = "confidence"
    characters_first: bool = True
    include_rating: bool = False
    max_tags: int = 0

    def __post_init__(self) -> None:
        for key in ("general_threshold", "character_threshold"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{key} must be a number in [0, 1], got {value!r}")
            setattr(self, key, float(value))
        if not isinstance(self.exclude_tags, str):
            raise ValueError(f"exclude_tags must be a comma-separated string, got {self.exclude_tags!r}")
        if self.sort not in SORT_MODES:
            raise ValueError(f"sort must be one of {SORT_MODES}, got {self.sort!r}")
        if isinstance(self.max_tags, bool) or not isinstance(self.max_tags, int) or self.max_tags < 0:
            raise ValueError(f"max_tags must be an integer >= 0 (0 = no limit), got {self.max_tags!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TagOptions":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TagOptions: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**dict(data))


@dataclass
class TagResult:
    """Tags for one image. `error` is set (and tags empty) when the image was skipped."""

    source: str
    tags: list[str] = field(default_factory=list)
    confidences: dict[str, float] = field(default_factory=dict)
    rating: str | None = None
    ratings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    caption_path: Path | None = None
    caption_action: str | None = None
    caption_note: str | None = None  # why a caption was not written although the image was tagged

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def caption(self) -> str:
        return ", ".join(self.tags)


_WS = re.compile(r"\s+")


def normalize_tag(tag: str) -> str:
    """Comparison key: case-, underscore- and escape-insensitive (`Long_Hair` == `long hair`)."""
    tag = tag.strip().lower().replace("\\(", "(").replace("\\)", ")").replace("_", " ")
    return _WS.sub(" ", tag).strip()


def parse_tag_list(text: str) -> list[str]:
    """Split a list of tag *names* (such as exclude_tags) at every comma: brackets here are part of
    names like `>:(` or `(o)_(o)`, not weight syntax, so captions use `split_tags` instead."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def format_tag(name: str, replace_underscores: bool, escape_brackets: bool) -> str:
    """Apply the underscore rule (kaomoji keep theirs) and bracket escaping to one CSV tag."""
    if replace_underscores and len(name) > 3 and name not in KAOMOJI:
        name = name.replace("_", " ")
    if escape_brackets:
        name = name.replace("(", "\\(").replace(")", "\\)")
    return name


def select_tags(probs: np.ndarray, table: TagTable, options: TagOptions, source: str = "") -> TagResult:
    """Turn one image's probability vector into a TagResult.

    Order of operations: thresholds (>=) -> exclusions -> max_tags (keeps the most confident) ->
    ordering -> formatting. The rating (argmax of category-9 rows) is always reported in
    `rating`/`ratings`; with `include_rating` it is also the first tag and does not count
    towards `max_tags`.
    """
    # float32 like the model output, so a score of float32(0.35) passes a threshold of 0.35
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    if probs.shape[0] != len(table):
        src = table.path if table.path is not None else "the tags table"
        raise TaggerModelError(
            f"model outputs {probs.shape[0]} scores but {src} has {len(table)} tags; the CSV does not "
            "belong to this model — download the matching selected_tags.csv"
        )
    excluded = {normalize_tag(t) for t in parse_tag_list(options.exclude_tags)}

    rating_idx = table.indices(CATEGORY_RATING)
    ratings = {table.names[i]: float(probs[i]) for i in rating_idx}
    rating = table.names[max(rating_idx, key=lambda i: probs[i])] if rating_idx else None

    picked: list[int] = []
    for i, (name, cat) in enumerate(zip(table.names, table.categories)):
        if cat == CATEGORY_RATING:
            continue
        threshold = options.character_threshold if cat == CATEGORY_CHARACTER else options.general_threshold
        if probs[i] >= np.float32(threshold) and normalize_tag(name) not in excluded:
            picked.append(i)

    if options.max_tags and len(picked) > options.max_tags:
        by_conf = sorted(picked, key=lambda i: (-probs[i], i))
        picked = sorted(by_conf[: options.max_tags])

    def fmt(i: int) -> str:
        return format_tag(table.names[i], options.replace_underscores, options.escape_brackets)

    if options.sort == "confidence":
        key = lambda i: (-probs[i], i)  # noqa: E731
    elif options.sort == "alphabetical":
        key = lambda i: (fmt(i).lower(), i)  # noqa: E731
    else:
        key = lambda i: i  # noqa: E731
    if options.characters_first:
        chars = sorted((i for i in picked if table.categories[i] == CATEGORY_CHARACTER), key=key)
        rest = sorted((i for i in picked if table.categories[i] != CATEGORY_CHARACTER), key=key)
        ordered = chars + rest
    else:
        ordered = sorted(picked, key=key)

    tags = [fmt(i) for i in ordered]
    if options.include_rating and rating is not None and normalize_tag(rating) not in excluded:
        tags.insert(0, format_tag(rating, options.replace_underscores, options.escape_brackets))
    return TagResult(
        source=source,
        tags=tags,
        confidences={table.names[i]: float(probs[i]) for i in ordered},
        rating=rating,
        ratings=ratings,
    )
