"""What a training preview renders: its prompt (A1111's templated training prompt) and its seed."""
from __future__ import annotations

import random
from typing import Sequence

from .settings import MAX_SEED, PREVIEW_SEED_MODES, make_settings_class  # noqa: F401 (re-exported)
from .templates import choose_template_line, fill_template


PreviewSettings = make_settings_class(
    "PreviewSettings", "preview",
    "How a training preview is sampled (the Preview Options node's values, validated); an empty "
    "`prompt` means the templated training prompt (`default_preview_prompt`).", __name__)


def default_preview_prompt(template_lines: Sequence[str], name: str, caption: str, seed: int) -> str:
    """A1111 previews with the training prompt of the batch's first item (template line with
    `[name]` and `[filewords]` filled). Here: item 0's own template line, without tag shuffle or
    dropout, so that every preview of a run uses the same prompt and they compare."""
    return fill_template(choose_template_line(template_lines, seed, 0, 0), name, caption)


class PreviewSeeds:
    """The seed of each preview: the user's seed ("fixed") or a new random one each time ("random",
    A1111's default of seed -1). Every seed used is kept so the report can name it."""

    def __init__(self, mode: str, seed: int, rng: random.Random | None = None):
        if mode not in PREVIEW_SEED_MODES:
            raise ValueError(f"preview_seed_mode: {mode!r} is invalid; use one of {', '.join(PREVIEW_SEED_MODES)}")
        self.mode, self.seed = mode, int(seed)
        self._rng = rng or random.Random()  # OS entropy: a random preview seed must not repeat per run
        self.used: list[tuple[int, int]] = []

    def next(self, step: int) -> int:
        seed = self.seed if self.mode == "fixed" else self._rng.randint(0, MAX_SEED)
        self.used.append((step, seed))
        return seed

    def report_line(self, limit: int = 8) -> str | None:
        if not self.used:
            return None
        if self.mode == "fixed":
            return f"previews: seed {self.seed} (fixed)"
        shown = ", ".join(f"step {step}: {seed}" for step, seed in self.used[-limit:])
        more = f" (last {limit} of {len(self.used)})" if len(self.used) > limit else ""
        return f"previews: random seeds{more}: {shown}"
