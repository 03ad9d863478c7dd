"""Combo values renamed after release: saved workflows and API prompts still hold the old values.

The host refuses a combo value that is not in the node's list before the node runs, unless the
node's VALIDATE_INPUTS takes that input; these nodes do, and accept exactly today's values plus
the old names their core normaliser maps (e.g. Preprocess's "prepend" -> "existing_first").
"""
from __future__ import annotations

from typing import Any, Callable


def accept_renamed(normalise: Callable[[Any], str], value: Any) -> bool | str:
    """VALIDATE_INPUTS' answer for one renamed combo: True, or the normaliser's error message.
    A linked input (no value before the run) is checked when the node runs."""
    if value is None:
        return True
    try:
        normalise(value)
    except ValueError as exc:
        return str(exc)
    return True
