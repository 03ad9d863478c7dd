"""What the trainer does to let a run be judged: validation passes (raw and EMA weights), the EMA
itself, the best checkpoint and its `<name>-best.pt` copy, and the early stop.

Kept out of `trainer.py` so that the loop stays readable: the trainer calls `after_update`,
`validate`, `after_save` and `should_stop` at a few places and knows nothing else of this.
"""
from __future__ import annotations

import contextlib
import logging
import math
import shutil
from pathlib import Path
from typing import Callable, ContextManager

import torch

from ..network.fileio import load_hypernetwork, save_hypernetwork
from ..network.module import Hypernetwork
from ..util.atomic import atomic_path
from .checkpoints import RunFolder, architecture
from .train_config import TrainConfig
from .ema import EMA_WEIGHTS_KEY, EmaWeights
from .log import LossHistory
from .validation import BestTracker

logger = logging.getLogger(__name__)

VAL_LOSS_KEY = "hn_val_loss"  # extra file metadata: the held-out loss of the weights in the file


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class Judge:
    """Validation, EMA and best-checkpoint bookkeeping of one run."""

    def __init__(self, network: Hypernetwork, config: TrainConfig, run_folder: RunFolder,
                 validate: Callable[[], float] | None,
                 evaluation_mode: Callable[[], ContextManager] = contextlib.nullcontext,
                 history: LossHistory | None = None):
        self.config = config
        self.run_folder = run_folder
        self._validate = validate
        self._evaluation_mode = evaluation_mode
        self.best = BestTracker(config.stop_after_no_improvement)
        self.ema_note = ""
        self.ema: EmaWeights | None = None
        if config.ema_decay > 0:
            start = self._saved_ema(network)
            self.ema = EmaWeights(network, config.ema_decay, start)
            self.ema_note = (f"EMA restored from {run_folder.ema_path(network.step).name}" if start is not None
                             else f"EMA (decay {config.ema_decay:g}) starts from the weights of step {network.step}")
        self.last: tuple[int, float | None, float | None] | None = None  # (step, raw, ema) of the last pass
        self.best_path: Path | None = None
        self.ema_paths: list[Path] = []
        if validate is not None and history is not None:
            self._continue(history, network.step)

    def _continue(self, history: LossHistory, step: int) -> None:
        """A resumed run carries on the best-so-far and the early-stop count of the run it continues."""
        for row_step, loss in history.validations():
            if row_step > step:
                break
            self.best.evaluated(row_step, loss)
            if self.run_folder.checkpoint_path(row_step).is_file() and self.run_folder.best_path().is_file():
                self.best.saved(row_step, loss)

    @property
    def validating(self) -> bool:
        return self._validate is not None

    def _saved_ema(self, network: Hypernetwork) -> Hypernetwork | None:
        path = self.run_folder.ema_path(network.step)
        if network.step == 0 or not path.is_file():
            return None
        try:
            saved = load_hypernetwork(path)
        except (ValueError, FileNotFoundError) as exc:
            logger.warning("EMA file %s unreadable (%s); the EMA starts again from the current weights", path, exc)
            return None
        return saved if architecture(saved) == architecture(network) else None

    def after_update(self, network: Hypernetwork) -> None:
        if self.ema is not None:
            self.ema.update(network)

    def after_rollback(self, network: Hypernetwork) -> None:
        self.last = None  # the step numbers after the rollback are evaluated again
        if self.ema is not None:
            self.ema.reset_to(network)

    def due(self, step: int, saving: bool) -> bool:
        every = self.config.validate_every
        return self.validating and (saving or bool(every and step % every == 0))

    def validate(self, network: Hypernetwork) -> tuple[float | None, float | None]:
        """(raw, EMA) held-out losses of the network's current weights; dropout off, no gradients."""
        if self._validate is None:
            return None, None
        if self.last is not None and self.last[0] == network.step:
            return self.last[1], self.last[2]
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad(), self._evaluation_mode():
                raw = self._validate()
                ema = None
                if self.ema is not None:
                    with self.ema.swapped_into(network):
                        ema = self._validate()
        finally:
            network.train(was_training)
        self.best.evaluated(network.step, raw)
        self.last = (network.step, raw, ema)
        return raw, ema

    def before_save(self, network: Hypernetwork) -> float | None:
        """Validate the weights about to be saved (once per step) and stamp the file's metadata
        with the result and, with EMA on, with which weights it holds."""
        raw, _ = self.validate(network) if self.validating else (None, None)
        extra = {k: v for k, v in network.extra.items() if k not in (VAL_LOSS_KEY, EMA_WEIGHTS_KEY)}
        if _finite_or_none(raw) is not None:
            extra[VAL_LOSS_KEY] = raw
        if self.ema is not None:
            extra[EMA_WEIGHTS_KEY] = "raw"
        network.extra = extra
        return raw

    def after_save(self, network: Hypernetwork, path: Path, raw: float | None) -> bool:
        """Write the EMA file and follow the best checkpoint; True when `path` is the new best."""
        if self.ema is not None:
            shadow = self.ema.shadow
            shadow.step = network.step
            shadow.sd_checkpoint, shadow.sd_checkpoint_name = network.sd_checkpoint, network.sd_checkpoint_name
            ema_loss = _finite_or_none(self.last[2]) if self.last and self.last[0] == network.step else None
            shadow.extra = {k: v for k, v in network.extra.items() if k != VAL_LOSS_KEY}
            shadow.extra[EMA_WEIGHTS_KEY] = "ema"
            if ema_loss is not None:
                shadow.extra[VAL_LOSS_KEY] = ema_loss
            self.ema_paths.append(save_hypernetwork(shadow, self.run_folder.ema_path(network.step)))
        if raw is None or not self.best.saved(network.step, raw):
            return False
        best = self.run_folder.best_path()
        with atomic_path(best) as tmp:
            shutil.copyfile(path, tmp)
        self.best_path = best
        return True

    @property
    def should_stop(self) -> bool:
        return self.best.should_stop

    def stop_message(self, step: int) -> str:
        return (f"stopped early at step {step}: the validation loss has not improved for "
                f"{self.best.since_best} evaluations (lowest {self.best.best_loss:.6f} at step {self.best.best_step})")

    def report_lines(self) -> list[str]:
        lines = []
        if self.best.checkpoint_step is not None:
            lines.append(f"best checkpoint (lowest validation loss {self.best.checkpoint_loss:.6f}): "
                         f"{self.run_folder.checkpoint_path(self.best.checkpoint_step).name}, copied to "
                         f"{self.run_folder.best_path().name}")
        if self.ema is not None:
            lines.append(f"{self.ema_note}; EMA weights saved as <name>-<step>-ema.pt; the final file holds the "
                         "raw weights")
        return lines
