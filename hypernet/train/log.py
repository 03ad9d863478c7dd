"""The loss history of a run: A1111's loss CSV plus an `event` column, kept in memory and
written atomically at every checkpoint and at the end.

A1111 columns: `step, epoch, epoch_step, loss, learn_rate` (loss formatted `%.7f`). We add
`event` (empty, or `nan_skip`, `rollback`, `lr_change`, joined by `+`) so that death detection is
visible in the same file; readers that use the header names are unaffected. Runs with held-out
validation add `val_loss` (and `val_loss_ema` with EMA on), filled on the evaluated steps. On resume the rows after the
resume step (written by a run that crashed after its last checkpoint) are dropped, so the file
continues the same curve.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..util.atomic import atomic_write_text

CSV_NAME = "hypernetwork_loss.csv"
COLUMNS = ("step", "epoch", "epoch_step", "loss", "learn_rate", "event")
VALIDATION_COLUMNS = ("val_loss", "val_loss_ema")


def _number_cell(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.7f}" if math.isfinite(value) else str(value)


def _optional_number(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


@dataclass
class LossRow:
    step: int
    epoch: int
    epoch_step: int
    loss: float
    learn_rate: float
    event: str = ""
    val_loss: float | None = None  # held-out validation loss, on evaluated steps only
    val_loss_ema: float | None = None  # the same for the EMA weights

    def cells(self) -> list[str]:
        return [str(self.step), str(self.epoch), str(self.epoch_step), _number_cell(self.loss),
                f"{self.learn_rate:.10g}", self.event]


@dataclass
class LossHistory:
    """The `HN_LOSS` socket value: every optimizer step's loss, learning rate and events."""

    rows: list[LossRow] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def add(self, row: LossRow) -> None:
        self.rows.append(row)

    def event(self, step: int, kind: str, message: str) -> None:
        self.events.append({"step": step, "kind": kind, "message": message})

    def truncate_after(self, step: int) -> None:
        self.rows = [r for r in self.rows if r.step <= step]
        self.events = [e for e in self.events if e["step"] <= step]

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.rows]

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.rows]

    @property
    def learning_rates(self) -> list[float]:
        return [r.learn_rate for r in self.rows]

    def validation_columns(self) -> tuple[str, ...]:
        """The validation columns this history has values for (none: the A1111 layout plus event)."""
        return tuple(name for name in VALIDATION_COLUMNS if any(getattr(r, name) is not None for r in self.rows))

    def validations(self, column: str = "val_loss") -> list[tuple[int, float]]:
        """(step, loss) of every evaluated step."""
        return [(r.step, getattr(r, column)) for r in self.rows if getattr(r, column) is not None]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        extra = self.validation_columns()
        writer.writerow(COLUMNS + extra)
        for row in self.rows:
            writer.writerow(row.cells() + [_number_cell(getattr(row, name)) for name in extra])
        return out.getvalue()

    def write(self, folder: Path) -> Path:
        return atomic_write_text(Path(folder) / CSV_NAME, self.to_csv())

    @classmethod
    def read(cls, path: Path) -> "LossHistory":
        """Read a CSV this pack (or A1111, without the event column) wrote."""
        history = cls()
        if not Path(path).is_file():
            return history
        with open(path, newline="", encoding="utf-8") as fh:
            for record in csv.DictReader(fh):
                try:
                    row = LossRow(int(record["step"]), int(record["epoch"]), int(record["epoch_step"]),
                                  float(record["loss"]), float(record["learn_rate"]), record.get("event") or "",
                                  _optional_number(record.get("val_loss")), _optional_number(record.get("val_loss_ema")))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}: unreadable loss row {record} ({exc}); delete or fix the file") from None
                history.add(row)
                if row.event:
                    history.events.append({"step": row.step, "kind": row.event, "message": row.event})
        return history

    def to_dict(self) -> dict:
        out = {"steps": self.steps, "losses": self.losses, "learning_rates": self.learning_rates,
               "events": list(self.events)}
        for column in self.validation_columns():
            pairs = self.validations(column)
            out[column] = {"steps": [s for s, _ in pairs], "losses": [v for _, v in pairs]}
        return out
