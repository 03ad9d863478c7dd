"""The training loop, readable top to bottom: schedule, accumulation, clipping, mixed precision,
non-finite skips, divergence rollback, checkpoints and resume.

The host-specific part (what a batch is, how the diffusion model turns it into a prediction and a
target) comes in as `objective`; everything here is plain torch and testable on a toy objective.
Randomness is derived from (seed, step) rather than drawn from a running generator, so a run
resumed from a checkpoint continues exactly the same curve.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch

from ..network.fileio import load_optimizer_state, save_hypernetwork, save_optimizer_state
from ..network.module import Hypernetwork
from .batches import BatchPlan, PlannedBatch, rank_share
from .checkpoints import RunFolder
from .train_config import TrainConfig
from .judging import Judge
from .log import LossHistory, LossRow
from .loss_terms import weighted_loss
from .precision import AUTOCAST_DTYPES, device_supports_bf16, resolve_training_dtype
from .rollback_point import RollbackPoint, RollbackUnavailable, checkpoint_point, restore, start_point
from .templates import derive_seed

logger = logging.getLogger(__name__)

OPTIMIZER_NAME = "AdamW"
LR_SCALE_KEY = "hn_lr_scale"  # kept in the optimizer's param group, so it survives resume
CONSECUTIVE_NONFINITE_LIMIT = 5


class GradientSync(Protocol):
    """Data parallel training (see distributed.py): which share of each batch this rank computes,
    and the all-reduce that sums the ranks' gradients and losses."""

    rank: int
    world: int

    def reduce(self, params: list[torch.nn.Parameter], loss: float) -> float:
        ...


class Objective(Protocol):
    """Turns one planned micro-batch into (prediction, target) tensors of the same shape, or
    (prediction, target, weight) with a loss weight that broadcasts to them (Min-SNR, alpha)."""

    def __call__(self, batch: PlannedBatch, generator: torch.Generator, step: int,
                 max_timestep: int = 1000) -> tuple[torch.Tensor, ...]:
        ...


@dataclass
class StepReport:
    step: int
    max_steps: int
    loss: float
    learning_rate: float
    epoch: int
    seconds_per_step: float
    event: str = ""


@dataclass
class TrainHooks:
    """Callbacks into the host: cancel check, progress, previews. All optional."""

    should_stop: Callable[[], bool] = lambda: False
    on_step: Callable[[StepReport], None] | None = None
    on_checkpoint: Callable[[int, Path], None] | None = None
    preview: Callable[[int, Hypernetwork], None] | None = None
    on_event: Callable[[dict], None] | None = None
    # True for the host's own cancel exception (it may clear the flag should_stop reads when raised).
    is_cancel: Callable[[BaseException], bool] = lambda exc: False
    # Cancel saves the step reached (weights + .optim), so nothing trained since save_every is lost.
    save_on_cancel: bool = True
    # The held-out loss of the network's current weights (the trainer sets eval mode and no_grad).
    validate: Callable[[], float] | None = None
    on_validation: Callable[[int, float | None, float | None], None] | None = None  # (step, raw, EMA)


@dataclass
class TrainResult:
    network: Hypernetwork
    history: LossHistory
    final_path: Path | None
    stopped: str  # "finished" | "cancelled" | "diverged" | "early_stop"
    message: str
    checkpoints: list[Path] = field(default_factory=list)
    training_dtype: str = "fp32"  # what the forward ran in ("auto" resolved)
    judge: Judge | None = None  # validation, EMA and the best checkpoint


def element_loss(prediction: torch.Tensor, target: torch.Tensor, loss_type: str, huber_delta: float) -> torch.Tensor:
    """Mean loss over all elements (A1111 uses MSE)."""
    prediction, target = prediction.float(), target.float()
    if loss_type == "mse":
        return torch.nn.functional.mse_loss(prediction, target)
    if loss_type == "l1":
        return torch.nn.functional.l1_loss(prediction, target)
    if loss_type == "huber":
        return torch.nn.functional.huber_loss(prediction, target, delta=huber_delta)
    raise ValueError(f"loss_type: {loss_type!r} is invalid; use mse, l1 or huber")


def objective_loss(output: tuple[torch.Tensor, ...], config: TrainConfig) -> torch.Tensor:
    """The mean loss of an objective's output, weighted when it carries a weight."""
    if len(output) > 2 and output[2] is not None:
        return weighted_loss(output[0], output[1], output[2], config.loss_type, config.huber_delta)
    return element_loss(output[0], output[1], config.loss_type, config.huber_delta)


def learning_rate_function(config: TrainConfig) -> tuple[Callable[[int], float], int]:
    """(rate_at(step), end_step) for the configured scheduler."""
    if config.cosine is None:
        return config.lr_schedule.rate_at, config.lr_schedule.end_step
    return config.cosine.rate_at, config.steps  # MonkeyPatch: with cosine on, training runs to max steps


def max_timestep_at(config: TrainConfig, step: int, end_step: int) -> int:
    """The timestep curriculum: 1000 when off; else rising linearly through each cycle."""
    if not config.timestep_curriculum:
        return 1000
    if config.cosine is not None:
        _, offset, length = config.cosine.cycle_at(step)
        progress = offset / max(1.0, length - 1)
    else:
        progress = step / max(1, end_step - 1)
    start = config.curriculum_start
    return max(1, min(1000, round(1000 * (start + (1 - start) * min(1.0, progress)))))


def copy_network(network: Hypernetwork) -> Hypernetwork:
    """An independent copy with normal (non-inference) tensors: ComfyUI caches node outputs, so
    the network that came in must never be trained in place."""
    with torch.inference_mode(False):
        return copy.deepcopy(network)


def _grads_finite(params: list[torch.nn.Parameter]) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


def _weight_norm(params: list[torch.nn.Parameter]) -> float:
    with torch.no_grad():
        return float(torch.sqrt(sum((p.detach().float() ** 2).sum() for p in params)))


class DivergenceWatch:
    """Loss well above its running baseline for a sustained window means the run is dying.

    The baseline is a slow EMA of losses from *before* the window, so a blow-up cannot drag its
    own baseline up. Diffusion losses are noisy (random timesteps), hence a window, not a step.
    """

    def __init__(self, factor: float, window: int):
        self.factor = factor
        self.recent: deque[float] = deque(maxlen=window)
        self.baseline: float | None = None
        self.seen = 0

    def update(self, loss: float) -> bool:
        if len(self.recent) == self.recent.maxlen:
            oldest = self.recent[0]
            self.baseline = oldest if self.baseline is None else 0.9 * self.baseline + 0.1 * oldest
        self.recent.append(loss)
        self.seen += 1
        if self.baseline is None or len(self.recent) < self.recent.maxlen:
            return False
        return sum(self.recent) / len(self.recent) > self.factor * self.baseline

    def reset(self) -> None:
        self.recent.clear()
        self.baseline = None


#: AdamW settings the user sets on the node; a resumed `.optim` keeps its moments, not these.
USER_OPTIMIZER_SETTINGS = ("weight_decay", "betas", "eps")


def _plain(value: Any) -> str:
    return str(tuple(float(v) for v in value)) if isinstance(value, (list, tuple)) else f"{value:g}" \
        if isinstance(value, (int, float)) else repr(value)


class Trainer:
    """One training run. Build it, then call `run()`; see `TrainHooks` for host callbacks."""

    def __init__(self, network: Hypernetwork, objective: Objective, plan: BatchPlan, config: TrainConfig,
                 run_folder: RunFolder, *, device_type: str = "cpu", optimizer_state: dict | None = None,
                 history: LossHistory | None = None, hooks: TrainHooks | None = None,
                 final_path: Path | None = None, before_final: Callable[[Path], None] | None = None,
                 sync: "GradientSync | None" = None, unchanged_start: Mapping[str, torch.Tensor] | None = None):
        self.network = network
        # the starting weights held elsewhere and never changed (see rollback_point.unchanged_reference)
        self._unchanged_start = unchanged_start
        self.sync = sync  # data parallel: this rank's share of each batch, gradients summed over ranks
        self.objective = objective
        self.plan = plan
        self.config = config
        self.run_folder = run_folder
        self.device_type = device_type
        self.hooks = hooks or TrainHooks()
        self.final_path = final_path
        self.before_final = before_final  # may refuse the final write (raises) when its target changed
        self._start_step = network.step
        self.history = history or LossHistory()
        self.history.truncate_after(network.step)
        self.params = list(network.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5, betas=(config.adamw_beta1, config.adamw_beta2),
                                           eps=config.adamw_eps, weight_decay=config.weight_decay)
        if optimizer_state is not None:
            self._load_optimizer(optimizer_state)
        self.lr_scale = float(self.optimizer.param_groups[0].get(LR_SCALE_KEY, 1.0))
        self.rate_at, self.end_step = learning_rate_function(config)
        self.clip_at = config.clip_schedule.rate_at if config.clip_schedule is not None else None
        self.training_dtype = resolve_training_dtype(config.training_dtype, device_type,
                                                     device_supports_bf16(device_type))
        self.autocast_dtype = AUTOCAST_DTYPES[self.training_dtype]
        self.scaler = torch.amp.GradScaler(device_type, enabled=self.training_dtype == "fp16")
        self.watch = DivergenceWatch(config.divergence_factor, config.divergence_window)
        self.rollbacks = 0
        self.checkpoints: list[Path] = []
        self._good: RollbackPoint | None = None  # the last good state (the start or a saved checkpoint)
        self._pending: list[str] = []  # events to mark on the next CSV row (e.g. after a rollback)
        self._cosine = config.cosine
        self.judge = Judge(network, config, run_folder, self.hooks.validate, self._autocast, self.history)
        self._best_good: RollbackPoint | None = None  # the best-validated checkpoint

    # ---------------------------------------------------------------- state helpers

    def _load_optimizer(self, state: dict) -> None:
        wanted = {key: self.optimizer.param_groups[0][key] for key in USER_OPTIMIZER_SETTINGS}
        try:
            self.optimizer.load_state_dict(state)
        except (ValueError, KeyError, RuntimeError) as exc:
            self._event(self.network.step, "optimizer_reset",
                        f"saved optimizer state does not fit this network ({exc}); starting a fresh optimizer")
            self.optimizer.state.clear()
        self._keep_user_settings(wanted)

    def _keep_user_settings(self, wanted: dict) -> None:
        """torch's `load_state_dict` brings back the saved run's AdamW settings; the user's current
        ones win (the moments are kept), and the report says which saved values were replaced."""
        replaced = []
        for group in self.optimizer.param_groups:
            for key, value in wanted.items():
                saved = group.get(key)
                same = tuple(saved) == tuple(value) if key == "betas" and saved is not None else saved == value
                if not same:
                    replaced.append(f"{key} {_plain(value)} (the .optim had {_plain(saved)})")
                group[key] = value
        if replaced:
            self._event(self.network.step, "optimizer_settings",
                        "resumed the saved optimizer state with your settings: "
                        + ", ".join(dict.fromkeys(replaced)))

    def _restore_good(self) -> int:
        restore(self._good, self.network, self.optimizer)
        return self._good.step

    def _event(self, step: int, kind: str, message: str) -> None:
        logger.warning("training %s at step %d: %s", kind, step, message)
        self.history.event(step, kind, message)
        if self.hooks.on_event is not None:
            self.hooks.on_event({"step": step, "kind": kind, "message": message})

    def _autocast(self):
        return torch.autocast(self.device_type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def _validate(self) -> tuple[float | None, float | None]:
        """Validate the current weights and put the result on the current step's CSV row."""
        raw, ema = self.judge.validate(self.network)
        if self.history.rows and self.history.rows[-1].step == self.network.step:
            self.history.rows[-1].val_loss, self.history.rows[-1].val_loss_ema = raw, ema
        if self.hooks.on_validation is not None:
            self.hooks.on_validation(self.network.step, raw, ema)
        return raw, ema

    def _save_checkpoint(self) -> Path:
        self.optimizer.param_groups[0][LR_SCALE_KEY] = self.lr_scale
        if self.judge.validating and (self.judge.last is None or self.judge.last[0] != self.network.step):
            self._validate()
        val_loss = self.judge.before_save(self.network)
        saved = self.run_folder.save_checkpoint(self.network, OPTIMIZER_NAME, self.optimizer.state_dict())
        path = saved.path
        self.history.write(self.run_folder.root)
        self.checkpoints.append(path)
        self._good = checkpoint_point(saved)  # read back from disk if a rollback needs it
        if self.judge.after_save(self.network, path, val_loss):
            self._best_good = self._good
        if self.hooks.on_checkpoint is not None:
            self.hooks.on_checkpoint(self.network.step, path)
        return path

    # ---------------------------------------------------------------- one optimizer step

    def _micro_batches(self, step: int) -> list[tuple[PlannedBatch, torch.Generator]]:
        accum = self.config.grad_accumulation_steps
        out = []
        for micro in range(accum):
            planned = self.plan.batch(step * accum + micro)
            if self.sync is not None:
                planned = rank_share(planned, self.sync.rank, self.sync.world)
            gen = torch.Generator().manual_seed(derive_seed(self.config.seed, "noise", step, micro) % 2**63)
            out.append((planned, gen))
        return out

    def _forward_backward(self, step: int) -> tuple[float, int]:
        accum = self.config.grad_accumulation_steps
        total, epoch = 0.0, 0
        # Dropout inside the network draws from the global RNG: seed it per step for exact resume.
        torch.manual_seed(derive_seed(self.config.seed, "dropout", step) % 2**63)
        for planned, gen in self._micro_batches(step):
            epoch = planned.epoch
            if planned.share == 0:  # fewer items than ranks: this rank adds nothing to this batch
                continue
            with self._autocast():
                if self.config.timestep_curriculum:
                    output = self.objective(planned, gen, step,
                                            max_timestep=max_timestep_at(self.config, step, self.end_step))
                else:
                    output = self.objective(planned, gen, step)
                loss = objective_loss(output, self.config) / accum
                if planned.rows is not None:  # the ranks' sum is the whole batch's mean
                    loss = loss * planned.share
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        return total, epoch

    def _clip(self, step: int) -> None:
        if self.clip_at is None:
            return
        # Unscale first (A1111 clipped the still-scaled fp16 gradients, so its clip was far stronger).
        self.scaler.unscale_(self.optimizer)
        value = self.clip_at(step)
        if self.config.clip_grad_mode == "value":
            torch.nn.utils.clip_grad_value_(self.params, value)
        else:
            torch.nn.utils.clip_grad_norm_(self.params, value)

    def _rollback(self, step: int, why: str) -> str | None:
        """Go back to the last good checkpoint with a lower LR; return a stop message if we can't."""
        if not self.config.rollback or self._good is None:
            return f"training diverged at step {step} ({why}) and rollback is off or no checkpoint exists yet"
        if self.rollbacks >= self.config.max_rollbacks:
            return (f"training diverged at step {step} ({why}) after {self.rollbacks} rollbacks; "
                    f"stopped. Lower the learning rate and resume from the last checkpoint")
        self.rollbacks += 1
        self.lr_scale *= self.config.rollback_lr_factor
        if self._best_good is not None:  # with validation on: back to the best checkpoint, not the newest
            self._good = self._best_good
        try:
            back_to = self._restore_good()
        except RollbackUnavailable as exc:
            return (f"training diverged at step {step} ({why}); could not roll back to step {self._good.step}: "
                    f"{exc}. Resume from a checkpoint you trust with a lower learning rate")
        self.judge.after_rollback(self.network)
        self.history.truncate_after(back_to)
        self.watch.reset()
        self._event(back_to, "rollback", f"{why} at step {step}; rolled back to step {back_to}, "
                                         f"learning rate x{self.lr_scale:g}")
        self._pending.append("rollback")
        return None

    # ---------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        network, config = self.network, self.config
        end = min(self.end_step, config.steps)
        if network.step >= end:
            return self._finish("finished", f"already trained to step {network.step} (schedule ends at {end})")
        rng_state = torch.get_rng_state()
        network.train()
        # rollback before the first checkpoint goes back to the start (held in CPU memory, never VRAM)
        self._good = start_point(network, self.optimizer, self._unchanged_start)
        nonfinite_streak = 0
        try:
            while network.step < end:
                if self.hooks.should_stop():
                    return self._cancel()
                step = network.step
                started = time.perf_counter()
                lr = self.rate_at(step) * self.lr_scale
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                loss, epoch = self._forward_backward(step)
                if self.sync is not None:  # every rank goes on with the same summed gradients and loss
                    loss = self.sync.reduce(self.params, loss)
                event = ""
                if not math.isfinite(loss) or not _grads_finite(self.params):
                    # Never write non-finite weights: skip the update, keep the step count moving.
                    nonfinite_streak += 1
                    self.optimizer.zero_grad(set_to_none=True)
                    if self.scaler.is_enabled():
                        self.scaler.update(self.scaler.get_scale() / 2)
                    event = "nan_skip"
                    self._event(step, event, f"non-finite loss or gradient (loss={loss}); update skipped")
                    if nonfinite_streak >= CONSECUTIVE_NONFINITE_LIMIT:
                        stop = self._rollback(step, f"{nonfinite_streak} non-finite steps in a row")
                        if stop:
                            return self._diverged(stop)
                        nonfinite_streak = 0
                        continue
                else:
                    nonfinite_streak = 0
                    self._clip(step)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                network.step = step + 1
                if event == "":
                    self.judge.after_update(network)
                bad_norm = _weight_norm(self.params) > config.max_weight_norm
                diverging = event == "" and self.watch.update(loss)
                if config.rollback and (bad_norm or diverging):
                    why = "weight norm above max_weight_norm" if bad_norm else "loss far above its running baseline"
                    stop = self._rollback(step + 1, why)
                    if stop:
                        return self._diverged(stop)
                    continue
                if step > 0 and config.scheduler == "a1111" and self.rate_at(step) != self.rate_at(step - 1):
                    self._pending.append("lr_change")
                    self._event(step, "lr_change", f"training at rate {lr:g}")
                event = "+".join([e for e in [event] + self._pending if e])
                self._pending = []
                steps_per_epoch = max(1, self.plan.batches_per_epoch // config.grad_accumulation_steps)
                self.history.add(LossRow(step + 1, epoch, step % steps_per_epoch + 1, loss, lr, event))
                if self.hooks.on_step is not None:
                    self.hooks.on_step(StepReport(step + 1, end, loss, lr, epoch, time.perf_counter() - started, event))
                cycle_end = bool(config.save_at_cycle_end and self._cosine and self._cosine.is_cycle_end(step))
                save_due = bool(config.save_every and network.step % config.save_every == 0) or cycle_end
                if self.judge.due(network.step, save_due):
                    self._validate()
                if save_due:
                    self._save_checkpoint()
                if self.judge.should_stop:
                    return self._finish("early_stop", self.judge.stop_message(network.step))
                preview_due = config.preview_every and network.step % config.preview_every == 0
                if (preview_due or cycle_end) and self.hooks.preview:
                    network.eval()
                    try:
                        self.hooks.preview(network.step, network)
                    finally:
                        network.train()
            return self._finish("finished", f"training finished at step {network.step}")
        except BaseException as exc:
            # A host raises its cancel from inside a hook (progress bar, preview sampling): keep the step.
            if self.hooks.is_cancel(exc) or self.hooks.should_stop():
                self._save_cancelled_step()
            raise
        finally:
            network.eval()
            torch.set_rng_state(rng_state)

    def _saved_current_step(self) -> bool:
        path = self.run_folder.checkpoint_path(self.network.step)
        if self.checkpoints and self.checkpoints[-1] == path:
            return True
        # Resumed and not trained further: that checkpoint is the current state; never rewrite it.
        return self.network.step == self._start_step and path.is_file()

    def _save_cancelled_step(self) -> bool:
        """Cancel saves the step reached (weights + .optim, named by step) unless save_on_cancel is off."""
        if not self.hooks.save_on_cancel or self.network.step == 0 or self._saved_current_step():
            return False
        try:
            self._save_checkpoint()
        except Exception:  # never hide why the run stopped behind a failed save
            logger.exception("could not save step %d on cancel", self.network.step)
            return False
        return True

    def _cancel(self) -> TrainResult:
        self._save_cancelled_step()
        kept = ("" if self.hooks.save_on_cancel else " (save_on_cancel is off: this step is not saved)")
        return self._result("cancelled", f"training cancelled at step {self.network.step}{kept}; "
                                         f"queue the graph again to resume from the last checkpoint")

    def _diverged(self, message: str) -> TrainResult:
        self.history.write(self.run_folder.root)
        return self._result("diverged", message)

    def _finish(self, stopped: str, message: str) -> TrainResult:
        if not self._saved_current_step():
            self._save_checkpoint()
        final = None
        if self.final_path is not None:
            if self.before_final is not None:
                self.before_final(self.final_path)
            final = save_hypernetwork(self.network, self.final_path)
            save_optimizer_state(final, OPTIMIZER_NAME, self.optimizer.state_dict())
            self.run_folder.record_final(final)
        return self._result(stopped, message, final)

    def _result(self, stopped: str, message: str, final: Path | None = None) -> TrainResult:
        return TrainResult(self.network, self.history, final, stopped, message, list(self.checkpoints),
                           self.training_dtype, self.judge)


def resume_point(network: Hypernetwork, run_folder: RunFolder, *, resume: bool, max_step: int,
                 source_file: Path | None) -> tuple[Hypernetwork, dict | None, LossHistory, str]:
    """Where to start: the newest matching checkpoint in the run folder, else the given network
    (with its own `.optim` when it came from a file whose hash matches). Returns
    (network copy, optimizer state or None, loss history so far, a message for the report)."""
    with torch.inference_mode(False):  # loaded tensors must be trainable even when called from a node
        return _resume_point(network, run_folder, resume=resume, max_step=max_step, source_file=source_file)


def _resume_point(network: Hypernetwork, run_folder: RunFolder, *, resume: bool, max_step: int,
                  source_file: Path | None) -> tuple[Hypernetwork, dict | None, LossHistory, str]:
    # Never write over an earlier run: files this start would overwrite (or that a later resume
    # would mistake for this run's) are moved into `previous-N/` first, never deleted.
    found = run_folder.latest_resumable(network, max_step=max_step) if resume else None
    if found is not None and found.network.step >= network.step:
        history = LossHistory.read(run_folder.root / "hypernetwork_loss.csv")
        checkpoint = found.network
        checkpoint.rename(network.name)
        message = f"resumed from {found.path.name} (step {checkpoint.step})"
        if found.optimizer_state is None:
            message += f" with a fresh optimizer ({found.optimizer_note})"
        if run_folder.files_after(checkpoint.step):
            moved = run_folder.move_aside()
            message += f"; the earlier run went further, so its files were moved to {moved}"
        return checkpoint, found.optimizer_state, history, message  # loaded here: ours to train
    moved = run_folder.move_aside()
    moved_note = f"; the earlier run's files were moved to {moved}" if moved is not None else ""
    history = LossHistory()
    start = copy_network(network)
    if source_file is not None:
        optim = load_optimizer_state(source_file)
        if optim.ok:
            return start, optim.state_dict, history, f"continuing {source_file.name} with its optimizer state{moved_note}"
        logger.warning("%s", optim.reason)
        return start, None, history, f"continuing {source_file.name} with a fresh optimizer ({optim.reason}){moved_note}"
    first = "started a fresh run" if start.step == 0 else f"continuing at step {start.step}"
    return start, None, history, first + moved_note
