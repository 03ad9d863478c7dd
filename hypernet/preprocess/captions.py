"""Existing-caption action of Preprocess (A1111 "Existing Caption txt Action").

ignore -> the new caption text only; copy -> the existing caption only; existing_first -> the
existing caption, then the new text (A1111 called this "prepend"); new_first -> the new text, then
the existing caption (A1111's "append"). The same two words mean the same in the WD14 Tagger's
write_captions; A1111's names are still accepted from saved workflows.
"""
from __future__ import annotations

CAPTION_ACTIONS = ("ignore", "copy", "existing_first", "new_first")
LEGACY_CAPTION_ACTIONS = {"prepend": "existing_first", "append": "new_first"}  # A1111's names


def caption_action(action: str) -> str:
    """The action, with an A1111 name (prepend/append) turned into today's; ValueError otherwise."""
    action = LEGACY_CAPTION_ACTIONS.get(action, action) if isinstance(action, str) else action
    if action not in CAPTION_ACTIONS:
        raise ValueError(f"existing_caption={action!r} is not valid; use one of {', '.join(CAPTION_ACTIONS)}")
    return action


def combine_caption(existing: str, new: str, action: str, separator: str = " ") -> str:
    """Combine an item's existing caption with the new caption text per `action` (see the module
    docstring). Empty parts are dropped so no stray separator remains; the result is stripped."""
    existing, new = existing.strip(), new.strip()
    parts = {"ignore": [new], "copy": [existing], "existing_first": [existing, new],
             "new_first": [new, existing]}[caption_action(action)]
    return separator.join(p for p in parts if p).strip()
