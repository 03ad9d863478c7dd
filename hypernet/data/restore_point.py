"""Reading a restore point file as untrusted input.

A restore point (`.hypernetwork_restore/<id>.json`) lies in the user's dataset folder, where
anyone can plant or edit one. Before a restore writes anything, the whole file is checked: a JSON
object of the expected shape, its own id, a valid caption extension (`caption_ext`), image names
that are relative names without '..' (resolved later through `index.resolve_image`), caption
texts that are text (or null: "there was no caption file"), and an edits sidecar that is itself
valid. Anything else raises ValueError naming the file and the field; nothing is written.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .caption_ext import validate_caption_extension
from .index import unaddressable_reason
from .sidecar import Edits

MAX_POINT_BYTES = 64 << 20
MAX_CAPTIONS = 200_000
MAX_CAPTION_CHARS = 1 << 20


@dataclass(frozen=True)
class RestorePoint:
    """A validated restore point. `edits` is False (not part of it), None (there was no sidecar)
    or the sidecar's text."""

    point_id: str
    caption_extension: str
    captions: dict[str, str | None]
    edits: str | None | bool
    created: float = 0.0
    label: str = ""


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "is not an image name"
    if unaddressable_reason(name) is not None or name.startswith("/") or \
            any(part in ("", ".", "..") for part in name.split("/")):
        return "is not a relative image name inside the folder"
    return None


def _edits_field(value: Any, where: str) -> str | None | bool:
    if value is False or value is None:
        return value
    if not isinstance(value, str):
        raise ValueError(f"{where}: 'edits' must be false, null or the sidecar's text, got {type(value).__name__}")
    try:
        Edits.from_dict(json.loads(value), f"{where}: 'edits'")
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(f"{where}: 'edits' is not valid JSON") from None
    return value


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_restore_point(raw: bytes, point_id: str, where: str) -> RestorePoint:
    """The restore point in `raw` (the file `where`, named `point_id`); ValueError when any part
    of it is not what the editor writes."""
    if len(raw) > MAX_POINT_BYTES:
        raise ValueError(f"{where} is larger than {MAX_POINT_BYTES >> 20} MiB; it is not a restore point")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{where} is not valid JSON; it cannot be restored") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a JSON object; it cannot be restored")
    if data.get("id") != point_id:
        raise ValueError(f"{where}: its 'id' {data.get('id')!r} is not its file name; it cannot be restored")
    ext = validate_caption_extension(data.get("caption_extension", ".txt"), f"{where}: caption_extension")
    captions = data.get("captions", {})
    if not isinstance(captions, dict):
        raise ValueError(f"{where}: 'captions' must map image names to caption text")
    if len(captions) > MAX_CAPTIONS:
        raise ValueError(f"{where}: more than {MAX_CAPTIONS} captions; it cannot be restored")
    for name, text in captions.items():
        problem = _name_problem(name)
        if problem is not None:
            raise ValueError(f"{where}: {name!r} {problem}; it cannot be restored")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{where}: the caption of {name!r} must be text or null, got {type(text).__name__}")
        if text is not None and len(text) > MAX_CAPTION_CHARS:
            raise ValueError(f"{where}: the caption of {name!r} is longer than {MAX_CAPTION_CHARS} characters")
        if text is not None and not _is_utf8(text):
            raise ValueError(f"{where}: the caption of {name!r} is not valid Unicode text")
    created, label = data.get("created"), data.get("label")
    return RestorePoint(point_id, ext, dict(captions), _edits_field(data.get("edits", False), where),
                        float(created) if isinstance(created, (int, float)) and math.isfinite(created) else 0.0,
                        label[:200] if isinstance(label, str) else "")
