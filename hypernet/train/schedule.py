"""Learning-rate schedules as pure functions of the optimizer step.

Two schedules:

* `StepSchedule`: A1111's schedule string (`"5e-6:12000, 5e-7:30000"`), also used for the
  gradient-clip value. `rate:step` means "use `rate` while step < `step`"; a bare rate or
  `rate:-1` runs to max steps and ends parsing; a step at or past max steps is clamped to max
  steps and ends parsing. Training stops at `end_step` (the last item's end), even when max steps
  is larger.
* `CosineRestarts`: MonkeyPatch's CosineAnnealingWarmUpRestarts (linear warmup from `min_lr` to
  the cycle peak, cosine decay back, restart; peak decays by `gamma` per cycle).

Both are immutable and stateless: `rate_at(step)` depends on the step only, so a run resumed at
step k gets exactly the rates an uninterrupted run would have used (A1111 re-parses the string
at resume and skips items whose step <= the resume step; that is the same as looking the step
up in the full schedule).

Steps are 0-based optimizer-step indices (`hn.step` before the update that uses the rate).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..util.dataclass_io import strict_from_dict

logger = logging.getLogger(__name__)

SCHEDULE_SYNTAX = (
    "comma-separated 'rate:step' items with increasing steps, e.g. '5e-6:12000, 5e-7:30000'; "
    "a bare rate ('1e-5') or 'rate:-1' runs to max steps"
)


def _check_step(step: int, what: str = "step") -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"{what} must be an int, got {step!r}")
    if step < 0:
        raise ValueError(f"{what} must be >= 0, got {step}")
    return step


@dataclass(frozen=True)
class ScheduleItem:
    """One schedule segment: `rate` is used for steps below `end_step` (exclusive)."""

    rate: float
    end_step: int


@dataclass(frozen=True)
class StepSchedule:
    """A parsed A1111 schedule string. Build it with `StepSchedule.parse` / `parse_schedule`."""

    items: tuple[ScheduleItem, ...]
    max_steps: int
    field: str = "learning_rate"
    text: str = ""
    ignored: tuple[str, ...] = ()  # items after the one that reaches max_steps (never used)

    @property
    def ignored_note(self) -> str | None:
        """The report line for `ignored` items (None when every item is used)."""
        if not self.ignored:
            return None
        return (f"{self.field}: items {', '.join(self.ignored)} come after the schedule reaches max steps "
                f"({self.max_steps}) and are ignored")

    def __post_init__(self) -> None:
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max steps for {self.field} must be a positive int, got {self.max_steps!r}")
        if not self.items:
            raise ValueError(f"{self.field}: the schedule has no items; expected {SCHEDULE_SYNTAX}")
        previous = 0
        for item in self.items:
            if not math.isfinite(item.rate) or item.rate < 0:
                raise ValueError(f"{self.field}: rate {item.rate!r} must be a finite number >= 0")
            if item.end_step <= previous or item.end_step > self.max_steps:
                raise ValueError(
                    f"{self.field}: end step {item.end_step} must be greater than the previous "
                    f"item's step ({previous}) and at most max steps ({self.max_steps})"
                )
            previous = item.end_step

    @classmethod
    def parse(cls, text: str, max_steps: int, field: str = "learning_rate") -> "StepSchedule":
        """Parse an A1111 schedule string; errors name `field`, the bad item and the syntax."""
        return parse_schedule(text, max_steps, field)

    @property
    def end_step(self) -> int:
        """The step at which training stops (the schedule is finished)."""
        return self.items[-1].end_step

    def item_index_at(self, step: int) -> int:
        """Index of the item in force at `step` (the last item once the schedule is finished)."""
        _check_step(step)
        for index, item in enumerate(self.items):
            if step < item.end_step:
                return index
        return len(self.items) - 1

    def rate_at(self, step: int) -> float:
        """Rate for the optimizer update at `step`.

        Past `end_step` the last rate is returned (A1111 keeps the last value once its iterator is
        exhausted; the clip-value schedule relies on that, the LR loop stops at `end_step`).
        """
        return self.items[self.item_index_at(step)].rate

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "max_steps": self.max_steps, "field": self.field}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StepSchedule":
        return parse_schedule(str(data["text"]), int(data["max_steps"]), str(data.get("field", "learning_rate")))


def _bad_item(field: str, item: str, text: str, why: str) -> ValueError:
    return ValueError(f"{field}: bad item {item!r} in {text!r}: {why}; expected {SCHEDULE_SYNTAX}")


def _not_increasing(field: str, rate: str, step: int, previous: int, raw_items: list[str]) -> str:
    """Why a step that does not increase is rejected: what A1111 would silently do, and the fix."""
    # A1111's scheduler moves to an item when the step reaches the previous item's end; an item that
    # already ended is applied once, and at the next micro-batch its iterator is exhausted: that ends
    # the run (learning rate) or keeps the value to the end (the clip schedule never stops training).
    if field == "learning_rate":
        a1111 = (f"switch to rate {rate} at step {previous} and stop training at its next batch "
                 "(one more step at most)")
    else:
        a1111 = f"switch to {rate} at step {previous} and keep it until the end"
    ordered = ", ".join(sorted(raw_items, key=_item_sort_key))
    return (f"steps must increase (previous step is {previous}, this one is {step}); A1111 would silently "
            f"{a1111}. Fix: list the items in increasing step order, e.g. '{ordered}'")


def _item_sort_key(raw: str) -> float:
    parts = raw.split(":")
    try:
        step = int(parts[1]) if len(parts) == 2 else -1
    except ValueError:
        return math.inf
    return math.inf if step == -1 else step


def parse_schedule(text: str, max_steps: int, field: str = "learning_rate") -> StepSchedule:
    """Parse A1111's `rate:step, rate:step, ...` string for `max_steps` training steps.

    Differences from A1111 (deliberate, all reported as errors instead of silent odd behaviour):
    steps must increase, a step of 0 or below -1 is rejected, empty items are ignored.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max steps for {field} must be a positive int, got {max_steps!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{field} is empty; expected {SCHEDULE_SYNTAX}")
    raw_items = [part.strip() for part in text.split(",")]
    raw_items = [part for part in raw_items if part]
    items: list[ScheduleItem] = []
    previous = 0
    ignored: list[str] = []
    for position, raw in enumerate(raw_items):
        parts = raw.split(":")
        if len(parts) > 2:
            raise _bad_item(field, raw, text, "more than one ':'")
        try:
            rate = float(parts[0])
        except ValueError:
            raise _bad_item(field, raw, text, f"rate {parts[0].strip()!r} is not a number") from None
        if not math.isfinite(rate) or rate < 0:
            raise _bad_item(field, raw, text, "the rate must be a finite number >= 0")
        if len(parts) == 1:
            end, last = max_steps, True
        else:
            try:
                step = int(parts[1])
            except ValueError:
                raise _bad_item(field, raw, text, f"step {parts[1].strip()!r} is not an integer") from None
            if step == -1:
                end, last = max_steps, True
            elif step < 1:
                raise _bad_item(
                    field, raw, text,
                    f"the step must be >= 1 (or -1 for 'until max steps'); A1111 would silently skip this "
                    f"item, so rate {parts[0].strip()} would never be used. Fix: remove the item, give it the "
                    f"step where it should end, or write '{parts[0].strip()}:-1' to use it until max steps",
                )
            elif step <= previous:
                raise _bad_item(field, raw, text, _not_increasing(field, parts[0].strip(), step, previous, raw_items))
            else:
                end, last = min(step, max_steps), step >= max_steps
        items.append(ScheduleItem(rate, end))
        previous = end
        if last:
            ignored = raw_items[position + 1:]
            break
    schedule = StepSchedule(items=tuple(items), max_steps=max_steps, field=field, text=text, ignored=tuple(ignored))
    if schedule.ignored_note:
        logger.warning("%s", schedule.ignored_note)
    return schedule


@dataclass(frozen=True)
class CosineRestarts:
    """MonkeyPatch's CosineAnnealingWarmUpRestarts as a pure function of the step.

    Cycle n (0-based) starts at `floor(cycle_steps * (m**n - 1) / (m - 1))` (`n * cycle_steps`
    when m == 1) and has nominal length `cycle_steps * m**n`; its peak is `base_lr * gamma**n`.
    Inside a cycle, at offset t: `t < warmup` -> `min + (peak - min) * t / warmup`, else
    `min + (peak - min) * (1 + cos(pi * (t - warmup) / (length - warmup))) / 2`.
    This is the closed form MonkeyPatch actually runs (it calls `scheduler.step(hn.step)` with the
    absolute step), so the rates match it.
    """

    base_lr: float
    cycle_steps: int = 64
    cycle_mult: float = 1.0
    warmup_steps: int = 5
    min_lr: float = 6e-7
    gamma: float = 1.0

    def __post_init__(self) -> None:
        def number(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            return float(value)

        def integer(name: str) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
            return value

        if number("base_lr") <= 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr!r}; set the peak learning rate")
        if integer("cycle_steps") < 1:
            raise ValueError(f"cycle_steps must be >= 1, got {self.cycle_steps!r}")
        if number("cycle_mult") < 1:
            raise ValueError(f"cycle_mult must be >= 1 (1 = equal cycles), got {self.cycle_mult!r}")
        if not 0 <= integer("warmup_steps") < self.cycle_steps:
            raise ValueError(
                f"warmup_steps must be >= 0 and smaller than cycle_steps ({self.cycle_steps}), "
                f"got {self.warmup_steps!r}"
            )
        if not 0 <= number("min_lr") <= self.base_lr:
            raise ValueError(f"min_lr must be >= 0 and <= base_lr ({self.base_lr}), got {self.min_lr!r}")
        if not 0 <= number("gamma") <= 1:
            raise ValueError(f"gamma must be in [0, 1] (1 = no decay per cycle), got {self.gamma!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CosineRestarts":
        return strict_from_dict(cls, data, "cosine schedule")

    def _cycle_start(self, n: int) -> int:
        if self.cycle_mult == 1:
            return n * self.cycle_steps
        m = self.cycle_mult
        # The epsilon absorbs float noise so exact boundaries (e.g. 64*(2**3-1)) never drop by one.
        return math.floor(self.cycle_steps * (m ** n - 1) / (m - 1) + 1e-9)

    def cycle_at(self, step: int) -> tuple[int, int, float]:
        """(cycle index, offset within the cycle, nominal cycle length) for `step`."""
        _check_step(step)
        if self.cycle_mult == 1:
            return step // self.cycle_steps, step % self.cycle_steps, float(self.cycle_steps)
        m = self.cycle_mult
        guess = int(math.log(step * (m - 1) / self.cycle_steps + 1, m)) if step else 0
        n = max(0, guess)
        # Correct the float guess with exact integer boundaries (MonkeyPatch's log can be off by one).
        while self._cycle_start(n + 1) <= step:
            n += 1
        while n > 0 and self._cycle_start(n) > step:
            n -= 1
        return n, step - self._cycle_start(n), self.cycle_steps * m ** n

    def rate_at(self, step: int) -> float:
        """Learning rate for the optimizer update at `step`."""
        n, offset, length = self.cycle_at(step)
        peak = self.base_lr * self.gamma ** n
        if offset < self.warmup_steps:
            return (peak - self.min_lr) * offset / self.warmup_steps + self.min_lr
        progress = (offset - self.warmup_steps) / (length - self.warmup_steps)
        return self.min_lr + (peak - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

    def is_cycle_end(self, step: int) -> bool:
        """True when `step` is the last update of its cycle (the next step restarts).

        Call it with the step index of the update just done (`hn.step` before the increment), as
        MonkeyPatch's `is_EOC` does. Unlike MonkeyPatch, this also fires for cycles whose nominal
        length is fractional (cycle_mult not an integer), where its equality test never holds.
        """
        n, _, _ = self.cycle_at(step)
        return step + 1 == self._cycle_start(n + 1)
