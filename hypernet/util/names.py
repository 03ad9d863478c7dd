"""The one check for every name that becomes part of a path (run folders, checkpoints, final
files, outputs). A name read from a file or a request is metadata; only a name that passes
`safe_name` may be joined to a folder.
"""
from __future__ import annotations

import os
from typing import Any

# A file system allows 255 bytes per name; the longest file derived from a name is
# `.<name>-<step>.pt.optim.hntmp-XXXXXXXX.tmp` (the atomic writer's temp file), so leave room.
MAX_NAME_BYTES = 180


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...' ({len(str(value))} characters)"


def safe_name(value: Any, field: str) -> str:
    """`value` unchanged when it can be used as one file or folder name; else ValueError naming
    `field`, the value and the fix.

    Refused: non-text, empty or blank, `/` or `\\`, `.`/`..`, a leading dot (hidden, and the
    atomic writer's temp prefix), NUL and other control characters, surrounding spaces, and
    more than MAX_NAME_BYTES bytes of UTF-8.
    """
    fix = "use a short name of letters, digits, '.', '_', '-' or spaces, such as 'my_style'"
    if not isinstance(value, str):
        raise ValueError(f"{field}: {shown(value)} is not text; {fix}")
    problem = None
    if not value.strip():
        problem = "is empty"
    elif "/" in value or "\\" in value or os.path.isabs(value):
        problem = "contains a path separator (a name is never a path)"
    elif value in (".", ".."):
        problem = "is not a name"
    elif value.startswith("."):
        problem = "starts with a dot (hidden file)"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        problem = "contains a control character"
    elif value != value.strip():
        problem = "starts or ends with a space"
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            problem = "is not valid Unicode text"
        else:
            if size > MAX_NAME_BYTES:
                problem = f"is {size} bytes long, more than {MAX_NAME_BYTES}"
    if problem:
        raise ValueError(f"{field}: {shown(value)} {problem}; {fix}")
    return value


def safe_relative_name(value: Any, field: str, max_parts: int = 16) -> str:
    """A relative file name with subfolders ('sub/net.pt'): every part passes `safe_name`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: {shown(value)} is empty; pick one from the list")
    if value.startswith(("/", "\\")) or os.path.isabs(value):
        raise ValueError(f"{field}: {shown(value)} is an absolute path; pick one from the list")
    parts = value.replace("\\", "/").split("/")
    if len(parts) > max_parts:
        raise ValueError(f"{field}: {shown(value)} has more than {max_parts} folder levels; pick one from the list")
    for part in parts:
        try:
            safe_name(part, field)
        except ValueError as exc:
            reason = str(exc).split("; ")[0]
            raise ValueError(f"{reason}: {shown(value)} is not a name inside the folder; "
                             f"pick one from the list") from None
    return value
