"""Typed reads of a route's JSON body or query: a string "false" is not False, 1e400 is not a page
offset, a list is capped. Every getter raises BadRequest (answered 400) naming the field."""
from __future__ import annotations

import json
import math
import re
from typing import Any

#: Largest request body the editor's routes read (a save of 10,000 long captions is ~10 MB).
MAX_BODY_BYTES = 32 << 20
#: Most names one request may list (exclusions, a bulk's names, a selection).
MAX_NAMES = 200_000
_DIGITS = re.compile(r"^[0-9]{1,12}$")


class BadRequest(ValueError):
    """Malformed request body or parameter (400)."""


class Query(dict):
    """GET parameters: numbers arrive as text there, and only there."""


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; BadRequest for anything else (invalid, too deep, not an object)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body must be a JSON object") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def flag(data: dict[str, Any], key: str, default: bool) -> bool:
    """A true/false field (missing or null: `default`)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{key}: expected true or false, got {_show(value)}")
    return value


def whole(data: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """A whole number in [low, high] (missing or null: `default`)."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(data, Query) and isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key}: expected a whole number, got {_show(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{key}: {_show(value)} is out of range; use {low}..{high}")
    return value


def text(data: dict[str, Any], key: str, default: str | None = None, *, optional: bool = False) -> str | None:
    """A text field (missing: `default`; null allowed when `optional`)."""
    if key not in data:
        return default
    value = data[key]
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key}: expected text, got {_show(value)}")
    return value


def names(data: dict[str, Any], key: str, *, required: bool = False) -> list[str] | None:
    """A list of image names (text), at most MAX_NAMES; None when missing and not required."""
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise BadRequest(f"{key}: expected a list of image names")
    if len(value) > MAX_NAMES:
        raise BadRequest(f"{key}: {len(value)} names; at most {MAX_NAMES} per request")
    return value


def _show(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown[:60]}{'...' if len(shown) > 60 else ''}"
