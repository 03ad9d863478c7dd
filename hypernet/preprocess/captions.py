"""Existing-caption action of Preprocess (A1111 "Existing Caption txt Action")."""
from __future__ import annotations


def combine_caption(existing: str, new: str, action: str, separator: str = " ") -> str:
    """Combine an item's existing caption with the new caption text.

    ignore -> new; copy -> existing; prepend -> existing, separator, new (the existing caption is
    put in front, A1111's meaning); append -> new, separator, existing. Empty parts are dropped
    so no stray separator remains; the result is stripped.
    """
    existing, new = existing.strip(), new.strip()
    if action == "ignore":
        parts = [new]
    elif action == "copy":
        parts = [existing]
    elif action == "prepend":
        parts = [existing, new]
    elif action == "append":
        parts = [new, existing]
    else:
        raise ValueError(f"existing_caption={action!r} is not valid; use ignore, copy, prepend or append")
    return separator.join(p for p in parts if p).strip()
