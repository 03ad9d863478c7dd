"""A1111 prompt templates and caption tag augmentation, seeded so a resumed run is exact.

A template is text with one prompt per line; `[filewords]` becomes the image caption and
`[name]` the hypernetwork name. A1111 picks a random line per image once, when the dataset is
built (its text encoding is then cached for the whole run); when tag shuffle or tag dropout is on
it picks again on every fetch. Here every random choice comes from a local `random.Random`
seeded from stable parts, never from global state:

* template line: (seed, item index, epoch); the epoch is fixed to 0 unless the line is re-picked
  (default: re-picked each epoch exactly when shuffle/dropout is on, as A1111 re-picks per fetch
  and each item is fetched once per epoch);
* tag shuffle/dropout: (seed, step, item index).

So the prompt an item gets depends only on those numbers, and resuming at step k reproduces the
prompts of an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import logging
import math
import random
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from ..util.caption_tags import join_tags, split_tags
from ..util.dataclass_io import strict_from_dict

logger = logging.getLogger(__name__)

NAME_TOKEN = "[name]"
FILEWORDS_TOKEN = "[filewords]"


def parse_template(text: str, field: str = "template") -> tuple[str, ...]:
    """Template text -> its prompt lines (stripped; blank lines dropped, unlike A1111 where a
    blank line would train on an empty prompt)."""
    if not isinstance(text, str):
        raise ValueError(f"{field} must be text, got {type(text).__name__}")
    lines = tuple(line.strip() for line in text.splitlines())
    lines = tuple(line for line in lines if line)
    if not lines:
        raise ValueError(
            f"{field} has no prompt lines; give one prompt per line using [name] and/or "
            "[filewords] (e.g. '[filewords], art by [name]')"
        )
    return lines


def fill_template(line: str, name: str, filewords: str) -> str:
    """Substitute `[filewords]` then `[name]` (A1111's order)."""
    return line.replace(FILEWORDS_TOKEN, filewords).replace(NAME_TOKEN, name)


def derive_seed(*parts: int | str) -> int:
    """A 64-bit seed from stable parts (same value in every process, unlike `hash()`)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


def _check_int(value: int, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def template_line_index(n_lines: int, seed: int, item_index: int, epoch: int = 0) -> int:
    """Index of the template line for an item; uniform, deterministic in its arguments."""
    _check_int(n_lines, "number of template lines", 1)
    _check_int(item_index, "item index")
    _check_int(epoch, "epoch")
    return random.Random(derive_seed("template", seed, item_index, epoch)).randrange(n_lines)


def choose_template_line(lines: Sequence[str], seed: int, item_index: int, epoch: int = 0) -> str:
    """The template line used for an item (see `template_line_index`)."""
    return lines[template_line_index(len(lines), seed, item_index, epoch)]


def augment_tags(
    caption: str,
    *,
    seed: int,
    step: int,
    item_index: int,
    shuffle: bool = False,
    dropout: float = 0.0,
    keep_tokens: int = 0,
) -> str:
    """Tag dropout (each tag kept with probability 1 - dropout) then shuffle, seeded by
    (seed, step, item index). The first `keep_tokens` tags are never dropped or moved (kohya's
    keep_tokens). Tags come from `split_tags` (a bracketed group such as `(red, blue:1.2)` moves
    as one tag, where A1111 splits at every comma) and are rejoined with ', '. With neither option
    the caption is returned unchanged. Dropout can remove every free tag; the result is then just
    the kept tags (possibly '').
    """
    _check_dropout(dropout)
    _check_int(keep_tokens, "keep_tokens")
    _check_int(step, "step")
    _check_int(item_index, "item index")
    if not shuffle and dropout == 0:
        return caption
    tags = split_tags(caption)
    fixed, free = tags[:keep_tokens], tags[keep_tokens:]
    rng = random.Random(derive_seed("tags", seed, step, item_index))
    if dropout > 0:
        # One draw per tag in order, so a given tag's fate does not depend on the shuffle.
        free = [tag for tag in free if rng.random() >= dropout]
    if shuffle:
        rng.shuffle(free)
    return join_tags(fixed + free)


def _check_dropout(dropout: float) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
        math.isfinite(dropout) and 0 <= dropout <= 1
    ):
        raise ValueError(f"tag_dropout must be a number in [0, 1] (0 = off), got {dropout!r}")
    return float(dropout)


@dataclass(frozen=True)
class CaptionConfig:
    """How a prompt is built from a template line and a caption.

    `resample_template`: None = A1111 behaviour (line fixed per image, re-picked each epoch only
    when shuffle or dropout is on); True/False force it.
    """

    shuffle_tags: bool = False
    tag_dropout: float = 0.0
    keep_tokens: int = 0
    resample_template: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.shuffle_tags, bool):
            raise ValueError(f"shuffle_tags must be true or false, got {self.shuffle_tags!r}")
        _check_dropout(self.tag_dropout)
        _check_int(self.keep_tokens, "keep_tokens")
        if self.resample_template is not None and not isinstance(self.resample_template, bool):
            raise ValueError(
                f"resample_template must be true, false or null (automatic), got {self.resample_template!r}"
            )

    @property
    def augments(self) -> bool:
        """True when captions change between steps (prompts cannot be encoded once and cached)."""
        return self.shuffle_tags or self.tag_dropout > 0 or bool(self.resample_template)

    @property
    def template_per_epoch(self) -> bool:
        if self.resample_template is None:
            return self.shuffle_tags or self.tag_dropout > 0
        return self.resample_template

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CaptionConfig":
        return strict_from_dict(cls, data, "caption settings")


def build_prompt(
    lines: Sequence[str],
    name: str,
    caption: str,
    config: CaptionConfig,
    *,
    seed: int,
    item_index: int,
    step: int,
    epoch: int,
) -> str:
    """The training prompt for one item at one step: template line + augmented caption."""
    if not lines:
        raise ValueError("template has no lines; parse it with parse_template first")
    line = choose_template_line(lines, seed, item_index, epoch if config.template_per_epoch else 0)
    words = augment_tags(
        caption,
        seed=seed,
        step=step,
        item_index=item_index,
        shuffle=config.shuffle_tags,
        dropout=config.tag_dropout,
        keep_tokens=config.keep_tokens,
    )
    return fill_template(line, name, words)
