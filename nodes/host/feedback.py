"""Progress bars, Cancel (the host's interrupt) and custom UI events."""
from __future__ import annotations

from typing import Any

import comfy.model_management
import comfy.utils


class Progress:
    """The node's progress bar in the UI (and the host's console bar)."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self._bar = comfy.utils.ProgressBar(self.total)

    def update(self, done: int, preview_image: Any = None) -> None:
        preview = ("PNG", preview_image, 512) if preview_image is not None else None
        self._bar.update_absolute(min(int(done), self.total), self.total, preview)


def interrupted() -> bool:
    """True once the user pressed Cancel (POST /interrupt); cheap enough to call every step."""
    return bool(comfy.model_management.processing_interrupted())


def is_interrupt(exc: BaseException) -> bool:
    """True for the host's cancel exception (raising it clears the flag `interrupted` reads)."""
    return isinstance(exc, comfy.model_management.InterruptProcessingException)


def raise_if_interrupted() -> None:
    """Raise the host's own interrupt exception, which it reports as a cancelled prompt."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def send_event(event: str, data: dict) -> None:
    """Send a custom websocket event (`hypernetwork.*`) to the browser; a no-op without a server."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return
    instance.send_sync(event, data, getattr(instance, "client_id", None))


def executing_node_id() -> str | None:
    """The id of the node now executing, to address UI events; None outside the server."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    instance = getattr(PromptServer, "instance", None)
    return getattr(instance, "last_node_id", None) if instance is not None else None


def set_console_progress(callback: Any) -> None:
    """Route the host's progress bars (feedback.Progress) to `callback(done, total)` (no server)."""
    comfy.utils.set_progress_bar_global_hook(lambda value, total, *args, **kwargs: callback(value, total))


class ProgressSpan:
    """Context: host progress bars created inside (the sampler's) fill `start..start+span` of `total`.

    So a loop of several samplings shows one bar in the UI. Every update inside also checks Cancel,
    so a cancelled prompt stops inside a sampling, not only between them. Not re-entrant.
    """

    def __init__(self, start: int, span: int, total: int):
        self.start, self.span, self.total = int(start), int(span), max(1, int(total))
        self._original = None

    def _hook(self, value, bar_total, preview=None, *args, **kwargs):
        raise_if_interrupted()
        if self._original is None:
            return None
        fraction = min(max(value / bar_total, 0.0), 1.0) if bar_total else 1.0
        return self._original(self.start + round(self.span * fraction), self.total, preview, *args, **kwargs)

    def __enter__(self) -> "ProgressSpan":
        self._original = comfy.utils.PROGRESS_BAR_HOOK
        comfy.utils.set_progress_bar_global_hook(self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        comfy.utils.set_progress_bar_global_hook(self._original)
