"""One training run, glued from the node's sockets: caches, objective, previews, UI events.

All host access goes through `nodes.host`; the loop itself is `hypernet.train.trainer.Trainer`.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..hypernet.data.dataset import Dataset, load_item_image
from ..hypernet.network.module import Hypernetwork
from ..hypernet.network.patch import HypernetworkPatch, require_match
from ..hypernet.train.alpha_weight import dataset_weight_maps
from ..hypernet.train.batches import BatchPlan
from ..hypernet.train.cache import LatentCache, PromptCache
from ..hypernet.train.checkpoints import RunFolder
from ..hypernet.train.train_config import TrainConfig
from ..hypernet.train.distributed import HeadlessRole
from ..hypernet.train.final_file import FinalFileGuard, final_file_note
from ..hypernet.train.latent_store import LatentStore, item_key
from ..hypernet.train.rollback_point import unchanged_reference
from ..hypernet.train.training_preview import PreviewSeeds, PreviewSettings, default_preview_prompt
from ..hypernet.train.trainer import Trainer, TrainHooks, TrainResult, objective_loss, resume_point
from ..hypernet.train.validation import ValidationSet, split_items
from ..hypernet.util.atomic import atomic_path, remove_stale_temp_files, require_writable_folder
from .host import base_model, feedback, patches, paths, sampling, saving, training
from .tensors import image_to_pil, pil_to_image

logger = logging.getLogger(__name__)

# A temp file of ours this much older than the run's start is left over from a killed save.
STALE_TEMP_AGE_S = 60


@dataclass
class SessionResult:
    result: TrainResult
    previews: list[dict]
    report: str


def _finite_or_none(value: float) -> float | None:
    """JSON for the browser has no NaN/Infinity: a skipped step's loss is sent as null."""
    return value if math.isfinite(value) else None


def _multiple_of_8(image):
    """Centre-crop to multiples of 8 pixels: latents are 1/8 of the image size."""
    width, height = image.size
    w8, h8 = width - width % 8, height - height % 8
    if (w8, h8) == (width, height):
        return image
    if w8 < 8 or h8 < 8:
        raise ValueError(f"dataset image {image.size} is smaller than 8x8 pixels; remove it or run Preprocess")
    left, top = (width - w8) // 2, (height - h8) // 2
    return image.crop((left, top, left + w8, top + h8))


def encode_dataset_latents(vae, dataset: Dataset, progress: feedback.Progress | None = None,
                           store: LatentStore | None = None, composite_alpha: bool = True) -> list:
    """Each item's latent distribution; with a `store`, read from / written to the disk cache.
    `composite_alpha` False encodes the colours under transparent pixels (alpha_loss_weight)."""
    entries, keys = [], []
    identity = training.vae_identity(vae) if store is not None else ""
    sizes = _sizes(dataset)
    for index, item in enumerate(dataset.items):
        feedback.raise_if_interrupted()
        key = item_key(item, sizes[index], identity, composite_alpha) if store is not None else None
        cached = store.get(key) if store is not None else None
        if cached is None:
            pixels = pil_to_image(_multiple_of_8(load_item_image(item, composite_alpha=composite_alpha)))
            cached = training.encode_latent_distribution(vae, pixels)
            if store is not None:
                store.put(key, cached)
        entries.append(cached)
        keys.append(key)
        if progress is not None:
            progress.update(index + 1)
    if store is not None:
        store.prune(keep=keys)
    return entries


def _sizes(dataset: Dataset) -> list[tuple[int, int]]:
    return [(item.width - item.width % 8, item.height - item.height % 8) for item in dataset.items]


class TrainingSession:
    def __init__(self, *, model, clip, vae, dataset: Dataset, network: Hypernetwork, source_file: Path | None,
                 config: TrainConfig, resume: bool, preview: PreviewSettings, node_id: str | None = None,
                 overwrite: bool = False, graph: tuple = (None, None), headless: HeadlessRole | None = None,
                 save_on_cancel: bool = True):
        self.model, self.clip, self.vae = model, clip, vae
        self.save_on_cancel = save_on_cancel
        self.dataset = dataset
        self.config = config
        self.preview_settings = preview
        self.node_id = node_id
        self.graph = graph  # (PROMPT, UNIQUE_ID): traced to the checkpoint file for sd_checkpoint
        started_at = time.time()
        self.headless = headless  # the torchrun runner (scripts/train_run.py); None in the node
        folder = headless.folder if headless is not None else paths.default_hypernetwork_folder()
        # The run name is a validated file name (RunFolder refuses separators, '..', absolute paths).
        self.run_folder = RunFolder(folder, network.name)
        self.final_path = folder / f"{self.run_folder.name}.pt"
        require_match(network, patches.all_attention_widths(model), "the connected model")
        final_note = final_file_note(self.final_path, self.run_folder, overwrite=overwrite,
                                     source_file=source_file, starting_network=network)
        require_writable_folder(folder, "hypernetworks folder")
        require_writable_folder(self.run_folder.root, "run folder")
        self.notes: list[str] = []
        self._final_guard = FinalFileGuard(self.final_path)
        removed = remove_stale_temp_files([folder, self.run_folder.root], older_than=started_at - STALE_TEMP_AGE_S)
        if removed:
            self.notes.append(f"removed {len(removed)} stale temp file(s) left by an interrupted save: "
                              + ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
        self._incoming = network  # never changed (the graph's, or loaded by the node): see _train
        self.network, optimizer_state, self.history, self.start_message = resume_point(
            network, self.run_folder, resume=resume, max_step=config.steps, source_file=source_file)
        if headless is not None and headless.sync is not None:  # every rank starts from rank 0's resume point
            optimizer_state, self.start_message = headless.sync.same_start(self.network, optimizer_state,
                                                                           self.start_message)
        if final_note:
            self.notes.append(final_note)
        self._earlier_events = {id(e) for e in self.history.events}  # read from the CSV of earlier runs
        self.optimizer_state = optimizer_state
        self.previews: list[dict] = []
        self._preview_seeds = PreviewSeeds(config.preview_seed_mode, preview.seed)
        self._started = time.monotonic()

    # ------------------------------------------------------------------ callbacks

    def _send(self, kind: str, data: dict) -> None:
        feedback.send_event(f"hypernetwork.train.{kind}", dict(data, node=self.node_id, name=self.network.name))

    def _preview(self, training_model: training.TrainingModel, step: int) -> None:
        settings = self.preview_settings
        sizes = Counter(_sizes(self.dataset))
        width, height = sizes.most_common(1)[0][0]
        with torch.inference_mode():
            positive = sampling.encode_prompt(self.clip, self._preview_prompt, self.config.clip_skip)
            negative = sampling.encode_prompt(self.clip, settings.negative, self.config.clip_skip)
            latent = sampling.empty_latent(width, height)
            seed = self._preview_seeds.next(step)
            with sampling.no_latent_previews():
                samples = training_model.sample_preview(seed, settings.steps, settings.cfg, settings.sampler,
                                                        settings.scheduler, positive, negative, latent)
            image = sampling.decode(self.vae, samples)
        pil = image_to_pil(image)[0]
        path = self.run_folder.preview_path(step)
        with atomic_path(path) as tmp:
            pil.save(tmp, format="PNG")
        entry = saving.save_ui_image(pil, f"{self.network.name}-{step}")
        self.previews.append(entry)
        self._progress.update(step - self._first_step)  # no image: the host would add its own preview
        self._send("preview", {"step": step, "image": entry, "path": str(path), "seed": seed,
                               "prompt": self._preview_prompt})

    # ------------------------------------------------------------------ the run

    def run(self) -> SessionResult:
        config = self.config
        self._first_step = self.network.step
        total = max(1, config.steps - self.network.step)
        self._progress = feedback.Progress(total)
        self._set_base_model()
        self.notes.extend(ignored_schedule_notes(config))
        self.latent_store = LatentStore(paths.latent_cache_folder()) if config.latent_disk_cache else None
        latents = LatentCache(encode_dataset_latents(self.vae, self.dataset, store=self.latent_store,
                                                     composite_alpha=not config.alpha_loss_weight),
                              config.latent_sampling, config.seed)
        self.alpha_maps = (dataset_weight_maps(self.dataset.items, [tuple(m.shape[-2:]) for m in latents.means],
                                               _multiple_of_8) if config.alpha_loss_weight else None)
        training.release_vae_from_device(self.vae)
        encode = lambda text: training.encode_prompt_for_training(self.clip, text, config.clip_skip)  # noqa: E731
        prompts = PromptCache(config.template_lines, self.network.name,
                              [item.caption for item in self.dataset.items], config.caption_config(), config.seed,
                              encode)
        prompts.precompute()
        sizes = _sizes(self.dataset)
        # Held-out images (validation_images) never enter the batch plan.
        self.train_items, self.held_out = split_items(len(self.dataset), config.validation_images, config.seed)
        plan = BatchPlan([sizes[i] for i in self.train_items],
                         [self.dataset.items[i].repeats for i in self.train_items], config.batch_size, config.seed)
        patch = HypernetworkPatch([(self.network, 1.0)])  # A1111 trains at strength 1
        with torch.inference_mode(False), torch.enable_grad():
            training_model = training.TrainingModel(self.model, patch, config.gradient_checkpointing)
            try:
                result = self._train(training_model, latents, prompts, plan, sizes)
            finally:
                training_model.close()
        report = self._report(result, training_model, latents)
        return SessionResult(result, self.previews, report)

    def _set_base_model(self) -> None:
        """A1111 stamps every saved file with the checkpoint trained on; when this run's cannot be
        traced, a record the file already has is kept (never erased), and the report says so."""
        base = base_model.base_model_of_input(*self.graph, "model")
        kept = self.network.sd_checkpoint, self.network.sd_checkpoint_name
        if not base.known and any(kept):
            self.notes.append(f"base model of this run unknown ({base.why}); sd_checkpoint / sd_checkpoint_name "
                              f"keep the file's record: {kept[1] or '?'} [{kept[0] or '?'}]")
            return
        self.network.sd_checkpoint, self.network.sd_checkpoint_name = base.shorthash, base.name
        self.notes.append(base.report_line())

    def _train(self, training_model, latents, prompts, plan, sizes) -> TrainResult:
        config = self.config

        def objective(planned, generator, step, max_timestep=1000):
            items = [self.train_items[i] for i in planned.items]  # plan indices -> dataset indices
            width, height = sizes[items[0]]
            x0 = training_model.process_latent_in(latents.batch(items, generator))
            cond, pooled = prompts.conditioning(items, step, planned.epoch)
            if planned.rows is not None:  # data parallel: this rank's rows (the batch's draws stay the same)
                cond, pooled = cond[planned.rows], None if pooled is None else pooled[planned.rows]
            conds = training_model.conditioning(cond, pooled, width, height)
            output = training_model.prediction_and_target(
                x0, conds, generator, max_timestep=max_timestep, rows=planned.rows, noise_offset=config.noise_offset,
                min_snr_gamma=config.min_snr_gamma)
            return self._alpha_weighted(output, items if planned.rows is None else items[planned.rows])

        def on_step(report):
            self._progress.update(report.step - self._first_step)
            elapsed = time.monotonic() - self._started
            done = max(1, report.step - self._first_step)
            eta = elapsed / done * max(0, report.max_steps - report.step)
            self._send("progress", {"step": report.step, "max_steps": report.max_steps,
                                    "loss": _finite_or_none(report.loss), "lr": _finite_or_none(report.learning_rate),
                                    "epoch": report.epoch, "eta": eta, "event": report.event})

        first_caption = self.dataset.items[0].caption if self.dataset.items else ""
        self._preview_prompt = self.preview_settings.prompt or default_preview_prompt(
            self.config.template_lines, self.network.name, first_caption, self.config.seed)
        role = self.headless
        hooks = TrainHooks(
            should_stop=role.should_stop if role is not None else feedback.interrupted, is_cancel=feedback.is_interrupt,
            save_on_cancel=self.save_on_cancel, on_step=on_step,
            on_checkpoint=lambda step, path: self._send("checkpoint", {"step": step, "path": str(path)}),
            preview=(None if role is not None and not role.writer  # only rank 0 writes previews
                     else lambda step, net: self._preview(training_model, step)),
            on_event=lambda event: self._send("event", event),
            validate=self._validator(training_model, latents, prompts, sizes),
            on_validation=lambda step, raw, ema: self._send("validation", {
                "step": step, "val_loss": None if raw is None else _finite_or_none(raw),
                "val_loss_ema": None if ema is None else _finite_or_none(ema)}))
        self.run_folder.write_settings({"config": self.config.to_dict(), "network": self.network.config.to_dict(),
                                        "dataset": {"root": self.dataset.root, "items": len(self.dataset),
                                                    "held_out": [Path(self.dataset.items[i].path).name
                                                                 for i in self.held_out]},
                                        "start": self.start_message})
        trainer = Trainer(self.network, objective, plan, self.config, self.run_folder,
                          device_type=torch.device(training_model.device).type,
                          optimizer_state=self.optimizer_state, history=self.history, hooks=hooks,
                          final_path=self.final_path, before_final=self._final_guard,
                          sync=role.sync if role is not None else None,
                          unchanged_start=unchanged_reference(self.network, self._incoming))
        return trainer.run()

    def _alpha_weighted(self, output: tuple, items: list[int]) -> tuple:
        """With alpha_loss_weight on, the items' alpha weight maps join the loss weight."""
        if self.alpha_maps is None:
            return output
        alpha = torch.stack([self.alpha_maps[i] for i in items]).to(output[0].device)
        return output[0], output[1], alpha if len(output) < 3 else output[2] * alpha

    def _validator(self, training_model, latents: LatentCache, prompts: PromptCache, sizes):
        """The held-out loss of the network as it is now (None when validation is off)."""
        if not self.held_out:
            return None

        def evaluate(item, timesteps, noise):
            width, height = sizes[item]
            x0 = training_model.process_latent_in(latents.means[item]).expand(len(timesteps), -1, -1, -1)
            cond, pooled = prompts.conditioning([item] * len(timesteps), 0, 0)
            conds = training_model.conditioning(cond, pooled, width, height)
            return self._alpha_weighted(training_model.prediction_and_target(
                x0, conds, None, timesteps=timesteps, noise=noise), [item] * len(timesteps))

        held_out = ValidationSet(self.held_out, lambda item: tuple(latents.means[item].shape[1:]), self.config.seed,
                                 lambda p, t, w: objective_loss((p, t, w), self.config))
        return lambda: held_out.loss(evaluate)

    def _report(self, result: TrainResult, training_model, latents: LatentCache) -> str:
        lines = [result.message, self.start_message, *self.notes, *self._judging_lines(result),
                 *event_lines([e for e in result.history.events if id(e) not in self._earlier_events]),
                 precision_line(self.config.training_dtype, result.training_dtype),
                 f"{_model_memory_line(training_model)}; latent cache: {latents.nbytes / 2**20:.1f} MB",
                 *([self.latent_store.report_line()] if self.latent_store is not None else []),
                 f"checkpoints in {self.run_folder.root}"]
        seeds = self._preview_seeds.report_line()
        if seeds is not None:
            lines.append(f"{seeds}; prompt: {self._preview_prompt}")
        if result.final_path is not None:
            lines.append(f"final file: {result.final_path}")
        return "\n".join(lines)


    def _judging_lines(self, result: TrainResult) -> list[str]:
        lines = []
        if self.held_out:
            names = ", ".join(Path(self.dataset.items[i].path).name for i in self.held_out[:5])
            more = " ..." if len(self.held_out) > 5 else ""
            lines.append(f"validation: {len(self.held_out)} held-out image(s), never trained on: {names}{more}")
        if result.judge is not None:
            lines += result.judge.report_lines()
        lines += loss_option_lines(self.config)
        if self.alpha_maps is not None:
            weighted = sum(1 for m in self.alpha_maps if not bool((m == 1).all()))
            lines.append(f"alpha loss weight: {weighted} of {len(self.alpha_maps)} image(s) weighted by their alpha "
                         "channel; the others weigh 1 everywhere")
        return lines


def loss_option_lines(config) -> list[str]:
    """Report lines for the loss options a run trained with (none when both are off)."""
    applied = []
    if config.min_snr_gamma > 0:
        applied.append(f"min-SNR weighting, gamma {config.min_snr_gamma:g}")
    if config.noise_offset > 0:
        applied.append(f"offset noise {config.noise_offset:g}")
    if not applied:
        return []
    return [f"loss options: {'; '.join(applied)} (training loss only; the validation loss leaves them out)"]


def ignored_schedule_notes(config) -> list[str]:
    """Report lines for schedule items past `steps` (the user sees the report, not the log)."""
    schedules = [config.lr_schedule, config.clip_schedule]
    return [s.ignored_note for s in schedules if s is not None and s.ignored_note]


def precision_line(chosen: str, used: str) -> str:
    """The dtype the model forward ran in, and that "auto" chose it."""
    how = {"fp32": "fp32 (no autocast)", "bf16": "bf16 autocast", "fp16": "fp16 autocast with loss scaling"}[used]
    return f"precision: {how}" + (" (training_dtype auto)" if chosen == "auto" else "")


def _model_memory_line(training_model) -> str:
    if training_model.copy_bytes:
        return f"training copy of the model: {training_model.copy_bytes / 2**20:.1f} MB"
    return "model trained in place (no copy)"


_REPORTED_EVENTS = ("rollback", "optimizer_reset", "optimizer_settings")


def event_lines(events: list[dict], limit: int = 10) -> list[str]:
    """Report lines for the events a user must know about (rollbacks, optimizer resets) and a
    count of skipped non-finite steps; the full list is in the loss CSV and the log."""
    shown = [e for e in events if e.get("kind") in _REPORTED_EVENTS]
    lines = [f"{e['kind']} at step {e['step']}: {e['message']}" for e in shown[:limit]]
    if len(shown) > limit:
        lines.append(f"... and {len(shown) - limit} more (see the loss CSV)")
    skipped = sum(1 for e in events if e.get("kind") == "nan_skip")
    if skipped:
        lines.append(f"{skipped} step(s) skipped for a non-finite loss or gradient")
    return lines
