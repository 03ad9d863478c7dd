"""Compose an X/Y comparison grid image with labels, and its PNG metadata.

Layout follows A1111's `draw_grid_annotations`: font size `(cell_w + cell_h) // 25`, column
labels in a top band as tall as the tallest wrapped label, row labels in a left band 3/4 of a
cell wide, white background, black text. Bands exist only when they have text, so a 1x1 grid
without labels is the cell itself. Optional axis titles get their own band above the column
labels (X) and a vertical band left of the row labels (Y).

The font is Pillow's bundled scalable font (`ImageFont.load_default(size=...)`, Pillow >= 10.1);
older Pillow falls back to its small fixed bitmap font with a warning.
"""
from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

logger = logging.getLogger(__name__)

BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
MIN_FONT_SIZE = 8
PNG_INFO_KEY = "hypernet_grid"

Font = Any  # ImageFont.FreeTypeFont or ImageFont.ImageFont


@lru_cache(maxsize=32)
def load_font(size: int) -> Font:
    """Pillow's bundled font at `size` px; the fixed bitmap default on Pillow < 10.1."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: load_default() takes no size
        logger.warning("Pillow < 10.1: grid labels use the small fixed default font; upgrade Pillow for scalable labels")
        return ImageFont.load_default()


def font_size_for_cell(cell_w: int, cell_h: int) -> int:
    """A1111's label size: (w + h) // 25, at least MIN_FONT_SIZE."""
    return max(MIN_FONT_SIZE, (cell_w + cell_h) // 25)


def _line_height(font: Font) -> int:
    if hasattr(font, "getmetrics"):
        ascent, descent = font.getmetrics()
        return ascent + descent
    box = font.getbbox("Ag|")
    return box[3] - min(box[1], 0)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    return draw.textlength(text, font=font)


_BREAK_AFTER = re.compile(r"(?<=[/\\\-,;])")


def word_pieces(word: str) -> list[str]:
    """A word split after path separators, dashes, commas and semicolons ('demo_style/demo_style-10'
    -> 'demo_style/', 'demo_style-', '10'): the only places a too-wide word may be broken."""
    return [piece for piece in _BREAK_AFTER.split(word) if piece]


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: float) -> list[str]:
    """Word-wrap `text` to `max_width` px. A word wider than that is broken only after a separator
    (`/ \\ - , ;`), never between letters, digits or inside 'name_parts'; a piece still too wide stays whole on its
    own line (callers shrink the font first, see `fit_label`). Explicit newlines are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if _text_width(draw, candidate, font) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for piece in word_pieces(word):  # word alone is too wide: break after separators only
                if current and _text_width(draw, current + piece, font) > max_width:
                    lines.append(current)
                    current = piece
                else:
                    current += piece
        if current:
            lines.append(current)
    return lines


def _widest_piece(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    pieces = [p for word in text.split() for p in word_pieces(word)]
    return max((_text_width(draw, p, font) for p in pieces), default=0.0)


class _Block:
    """Wrapped lines of one label in one font, with their pixel height."""

    def __init__(self, draw: ImageDraw.ImageDraw, text: str, size: int, max_width: float) -> None:
        self.font = load_font(size)
        self.lines = wrap_text(draw, text, self.font, max_width)
        self.line_h = _line_height(self.font)
        self.gap = max(1, size // 4)
        self.height = len(self.lines) * self.line_h + max(0, len(self.lines) - 1) * self.gap

    def draw(self, draw: ImageDraw.ImageDraw, center_x: float, top: float) -> None:
        y = top
        for line in self.lines:
            x = center_x - _text_width(draw, line, self.font) / 2
            draw.text((round(x), round(y)), line, font=self.font, fill=TEXT_COLOR)
            y += self.line_h + self.gap


def _fit_block(
    draw: ImageDraw.ImageDraw, text: str, size: int, max_width: float, max_height: Optional[float]
) -> _Block:
    """Wrap at `size`; shrink the font until every unbreakable piece fits the width and (if a
    height limit is given) the block fits the height, down to MIN_FONT_SIZE."""
    block = _Block(draw, text, size, max_width)
    while size > MIN_FONT_SIZE and (_widest_piece(draw, text, block.font) > max_width
                                    or (max_height is not None and block.height > max_height)):
        size -= 1
        block = _Block(draw, text, size, max_width)
    return block


def fit_label(text: str, size: int, max_width: float, max_height: Optional[float] = None) -> tuple[int, list[str]]:
    """(font size, lines) a label is drawn with in a `max_width` px band (for tests and layout checks)."""
    block = _fit_block(ImageDraw.Draw(Image.new("RGB", (1, 1))), text, size, max_width, max_height)
    return block.font.size if hasattr(block.font, "size") else size, block.lines


def _check_labels(labels: Optional[Sequence[str]], count: int, what: str) -> list[str]:
    if labels is None:
        return [""] * count
    labels = ["" if label is None else str(label) for label in labels]
    if not labels:
        return [""] * count
    if len(labels) != count:
        raise ValueError(f"{what}: got {len(labels)} labels for {count} {what.split()[0]}s; give one per {what.split()[0]}")
    return labels


def compose_grid(
    cells: Sequence[Image.Image],
    cols: int,
    rows: int,
    *,
    col_labels: Optional[Sequence[str]] = None,
    row_labels: Optional[Sequence[str]] = None,
    x_title: str = "",
    y_title: str = "",
    margin: int = 0,
    font_size: Optional[int] = None,
) -> Image.Image:
    """Grid of `cols` x `rows` equal-size cells (row-major) with labels; returns an RGB image.

    Cell pixels are pasted unchanged at `(left + c * (w + margin), top + r * (h + margin))`.
    """
    if cols < 1 or rows < 1:
        raise ValueError(f"grid shape {cols}x{rows} is invalid; columns and rows must be >= 1")
    if len(cells) != cols * rows:
        raise ValueError(f"got {len(cells)} cell images for a {cols}x{rows} grid; need {cols * rows}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0 px, got {margin}")
    w, h = cells[0].size
    for index, cell in enumerate(cells):
        if cell.size != (w, h):
            raise ValueError(f"cell {index} is {cell.size[0]}x{cell.size[1]}, cell 0 is {w}x{h}; all cells must be the same size")
    col_texts = _check_labels(col_labels, cols, "column labels")
    row_texts = _check_labels(row_labels, rows, "row labels")
    x_title, y_title = (x_title or "").strip(), (y_title or "").strip()

    grid_w = cols * w + margin * (cols - 1)
    grid_h = rows * h + margin * (rows - 1)
    if not any(col_texts) and not any(row_texts) and not x_title and not y_title and cols * rows == 1:
        return cells[0].convert("RGB").copy()

    size = font_size or font_size_for_cell(w, h)
    spacing = max(2, size // 2)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    col_blocks = [_fit_block(scratch, t, size, w - spacing, None) for t in col_texts]
    top_band = max(b.height for b in col_blocks) + 2 * spacing if any(col_texts) else 0
    left_band = (w * 3) // 4 if any(row_texts) else 0
    row_blocks = [_fit_block(scratch, t, size, max(1, left_band - spacing), h) for t in row_texts]
    x_block = _fit_block(scratch, x_title, size, grid_w, None) if x_title else None
    x_band = x_block.height + 2 * spacing if x_block else 0
    y_block = _fit_block(scratch, y_title, size, grid_h, None) if y_title else None
    y_band = y_block.height + 2 * spacing if y_block else 0

    left = y_band + left_band
    top = x_band + top_band
    canvas = Image.new("RGB", (left + grid_w, top + grid_h), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    for index, cell in enumerate(cells):
        r, c = divmod(index, cols)
        canvas.paste(cell.convert("RGB"), (left + c * (w + margin), top + r * (h + margin)))

    for c, block in enumerate(col_blocks):
        center = left + c * (w + margin) + w / 2
        block.draw(draw, center, x_band + (top_band - block.height) / 2)
    for r, block in enumerate(row_blocks):
        middle = top + r * (h + margin) + h / 2
        block.draw(draw, y_band + left_band / 2, middle - block.height / 2)
    if x_block is not None:
        x_block.draw(draw, left + grid_w / 2, spacing)
    if y_block is not None:
        # Draw horizontally on a strip, then rotate so it reads bottom-to-top.
        strip = Image.new("RGB", (grid_h, y_band), BACKGROUND)
        y_block.draw(ImageDraw.Draw(strip), grid_h / 2, spacing)
        canvas.paste(strip.rotate(90, expand=True), (0, top))
    return canvas


def grid_png_info(
    axes: Sequence[Any],
    settings: Mapping[str, Any],
    *,
    extra_text: Optional[Mapping[str, str]] = None,
) -> PngInfo:
    """PNG text chunks for a grid: `hypernet_grid` = JSON {"axes": [...], "settings": {...}}.

    `axes` items are `AxisValues` (anything with `to_dict()`) or plain mappings. `extra_text`
    adds further chunks (e.g. ComfyUI's `prompt` / `workflow`).
    """
    axis_dicts = [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in axes]
    payload = {"axes": axis_dicts, "settings": dict(settings)}
    try:
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"grid metadata is not JSON-serialisable ({exc}); pass plain numbers, text, lists and dicts") from None
    info = PngInfo()
    info.add_itxt(PNG_INFO_KEY, text)
    for key, value in (extra_text or {}).items():
        if key == PNG_INFO_KEY:
            raise ValueError(f"extra_text may not override the {PNG_INFO_KEY!r} chunk")
        info.add_text(key, str(value))
    return info
