"""Reading caption files next to images, and A1111's caption-from-file-name fallback."""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# A1111 (PersonalizedBase): a leading run of digits/dashes and the spaces after it is not caption.
_LEADING_NUMBERS = re.compile(r"^[-\d]+\s*")


@dataclass(frozen=True, slots=True)
class CaptionText:
    """A decoded caption file. `fallback` is True when the bytes were not valid UTF-8."""

    text: str
    encoding: str
    fallback: bool


def decode_caption_bytes(raw: bytes) -> CaptionText:
    """Decode caption bytes: UTF-8 (BOM stripped), UTF-16 with BOM, else cp1252, else latin-1.

    The result is stripped of surrounding whitespace; inner newlines are kept (A1111 uses the
    whole file). Legacy encodings are reported through `fallback` so the user can fix the file.
    """
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return CaptionText(raw.decode("utf-16").strip(), "utf-16", False)
        except UnicodeDecodeError:
            pass
    try:
        return CaptionText(raw.decode("utf-8").strip(), "utf-8", False)
    except UnicodeDecodeError:
        pass
    try:
        return CaptionText(raw.decode("cp1252").strip(), "cp1252", True)
    except UnicodeDecodeError:
        return CaptionText(raw.decode("latin-1").strip(), "latin-1", True)


def read_caption_file(path: str) -> CaptionText:
    """Read and decode one caption file (read-only)."""
    with open(path, "rb") as fh:
        return decode_caption_bytes(fh.read())


def compile_word_regex(pattern: str) -> re.Pattern[str] | None:
    """Compile A1111's "Filename word regex" option; empty means off."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"filename_word_regex {pattern!r} is not a valid regular expression ({exc}); "
            "fix it or leave it empty"
        ) from exc


def caption_from_filename(stem: str, word_regex: re.Pattern[str] | None = None,
                          join: str = " ") -> str:
    """A1111's fallback caption: the file stem without leading digits/dashes.

    With `word_regex`, only its matches are kept, joined by `join` (A1111's "Filename join
    string"); a regex with groups contributes the first group of each match.
    """
    text = _LEADING_NUMBERS.sub("", stem)
    if word_regex is not None:
        tokens = word_regex.findall(text)
        text = join.join(t if isinstance(t, str) else t[0] for t in tokens)
    return text.strip()
