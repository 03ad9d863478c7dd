"""Preprocess core: turn a Dataset into crops/resizes/buckets/flips, lazily or as PNG files.

Without an output folder each output item keeps pointing at its source file and gets one more
`Transform` (decoded only for focal crops); with one, every output is decoded, transformed and
written as `NNNNN-S-<stem>.png` (+ `.txt` caption when non-empty) and the item points at it.

Work is spread over threads (PIL decodes, resamples and PNG-encodes with the GIL released) with a
small bounded window; results are consumed in dataset order, so names and the returned dataset
do not depend on timing. A cancel stops submitting work; items already running finish (their
files are written whole, atomically) and are included; nothing half-written stays behind.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..data.dataset import Dataset, DatasetItem, Transform, apply_transform, load_item_image
from ..data.images import BAD_REASONS, BadImageError
from ..data.load import BadFile
from ..data.dataset import item_alpha
from .buckets import BucketChoice, make_bucket_resolutions
from .captions import combine_caption
from .preprocess_config import PreprocessConfig
from .focal import FACES_NOTE
from .output import (OutputFolder, output_stem, prepare_output_folder, write_caption,
                                write_manifest, write_png)
from .plan import ItemPlan, needs_pixels, plan_outputs

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
# An image-to-image upscaler (e.g. an ESRGAN model run by the host); it may only enlarge.
UpscaleFn = Callable[[Any], Any]
_REPORT_LIST_LIMIT = 50
_PROGRESS_CALLS = 200  # at most ~200 progress updates however large the dataset


@dataclass
class PreprocessResult:
    """The new dataset, a report, and the numbers behind the report."""

    dataset: Dataset
    report: str
    output_directory: str = ""
    written_files: list[str] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class _ItemOutcome:
    items: list[DatasetItem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    kinds: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    bucket: BucketChoice | None = None
    bad: BadFile | None = None
    upscaled: int = 0
    model_upscaled: int = 0
    alpha_kept: int = 0


@dataclass(frozen=True)
class _Context:
    cfg: PreprocessConfig
    buckets: list[tuple[int, int]] | None
    out_dir: str | None
    upscale: UpscaleFn | None = None
    # One upscale at a time: the model runs on the host's device, not per worker thread.
    upscale_lock: threading.Lock = field(default_factory=threading.Lock)


def _is_upscale(plan_box: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    box_w, box_h = plan_box[2] - plan_box[0], plan_box[3] - plan_box[1]
    return size[0] > box_w + 1e-6 or size[1] > box_h + 1e-6


def _plan_enlarges(plan: ItemPlan) -> bool:
    """True when some output would be enlarged by resampling (the image is smaller than the target)."""
    return any(out.transform is not None and _is_upscale(out.transform.box, out.transform.size)
               for out in plan.outputs)


class UpscaleModelError(ValueError):
    """The upscaler itself is wrong (not a bad file): always raised, never skipped."""


def _model_upscale(upscale: UpscaleFn, image: Any) -> Any:
    enlarged = upscale(image.convert("RGB"))
    if enlarged.width < image.width or enlarged.height < image.height:
        raise UpscaleModelError(f"upscale_model returned {enlarged.width}x{enlarged.height} for a "
                         f"{image.width}x{image.height} image; connect an upscale (not a downscale) model")
    return enlarged


@dataclass(frozen=True)
class _KeptAlpha:
    """An RGBA source kept for writing: its colours (not composited) and its alpha, moved apart so
    each goes through exactly what the lazy path does to it (pixels padded with pad_color, alpha with 0)."""

    pixels: Image.Image
    alpha: Image.Image

    def apply(self, transform: Transform | None) -> Image.Image:
        pixels = apply_transform(self.pixels, transform) if transform else self.pixels
        alpha = apply_transform(self.alpha, transform) if transform else self.alpha
        return Image.merge("RGBA", (*pixels.split(), alpha))

    def upscaled(self, upscale: UpscaleFn) -> "_KeptAlpha":
        pixels = _model_upscale(upscale, self.pixels)
        return _KeptAlpha(pixels, self.alpha.resize(pixels.size, Image.Resampling.LANCZOS))


def _kept_alpha(item: DatasetItem) -> _KeptAlpha | None:
    """The item's colours and alpha, or None when it has no alpha or an alpha opaque everywhere."""
    alpha = item_alpha(item)
    if alpha is None or alpha.getextrema() == (255, 255):
        return None
    return _KeptAlpha(load_item_image(item, composite_alpha=False), alpha)


def _process_item(index: int, item: DatasetItem, ctx: _Context) -> _ItemOutcome:
    cfg = ctx.cfg
    outcome = _ItemOutcome()
    width, height = item.size
    image = None
    kept: _KeptAlpha | None = None
    try:
        if ctx.out_dir is not None or needs_pixels(width, height, cfg):
            image = load_item_image(item)
        if ctx.out_dir is not None and cfg.keep_alpha:
            kept = _kept_alpha(item)
        plan: ItemPlan = plan_outputs(width, height, cfg, image=image, buckets=ctx.buckets)
        if ctx.upscale is not None and _plan_enlarges(plan):
            assert image is not None  # an upscale model needs an output folder, so pixels are loaded
            with ctx.upscale_lock:
                image = _model_upscale(ctx.upscale, image)
                if kept is not None:
                    kept = kept.upscaled(ctx.upscale)
            outcome.model_upscaled = 1
            # Plan again on the enlarged pixels: crop/fit/focal now work on the model's output.
            plan = plan_outputs(image.width, image.height, cfg, image=image, buckets=ctx.buckets)
    except BadImageError as exc:
        return _bad(outcome, cfg, item, exc.reason, exc.detail, exc)
    except UpscaleModelError:
        raise
    except ValueError as exc:  # file changed since scan, image too small for keep/buckets
        return _bad(outcome, cfg, item, "unusable", str(exc), exc)
    outcome.notes = plan.notes
    outcome.bucket = plan.bucket
    caption = combine_caption(item.caption, cfg.caption_text, cfg.existing_caption,
                              cfg.caption_separator)
    for subindex, out in enumerate(plan.outputs):
        outcome.kinds["flipped" if out.flipped else out.kind] += 1
        if out.transform is not None and not out.flipped and _is_upscale(out.transform.box,
                                                                        out.transform.size):
            outcome.upscaled += 1
        if ctx.out_dir is None:
            transforms = item.transforms + ((out.transform,) if out.transform else ())
            outcome.items.append(DatasetItem(item.path, item.width, item.height, caption,
                                             item.repeats, transforms))
            continue
        assert image is not None
        final = (kept.apply(out.transform) if kept is not None
                 else apply_transform(image, out.transform) if out.transform else image)
        name = output_stem(index, subindex, item.stem)
        png = os.path.join(ctx.out_dir, name + ".png")
        outcome.hashes[name + ".png"] = write_png(final, png)
        outcome.files.append(name + ".png")
        outcome.alpha_kept += kept is not None
        if caption:
            outcome.hashes[name + ".txt"] = write_caption(caption, os.path.join(ctx.out_dir, name + ".txt"))
            outcome.files.append(name + ".txt")
        outcome.items.append(DatasetItem(png, final.width, final.height, caption, item.repeats))
    return outcome


def _bad(outcome: _ItemOutcome, cfg: PreprocessConfig, item: DatasetItem, reason: str,
         detail: str, exc: Exception) -> _ItemOutcome:
    if cfg.on_bad_file == "fail":
        raise ValueError(f"{item.path}: {detail or reason}; fix or remove the file, or set "
                         "on_bad_file to 'skip'") from exc
    outcome.bad = BadFile(item.path, reason, detail)
    return outcome


def _run_ordered(n: int, work: Callable[[int], _ItemOutcome], workers: int,
                 should_cancel: CancelFn | None,
                 consume: Callable[[int, _ItemOutcome], None]) -> bool:
    """Run work(i) for i < n on `workers` threads; consume results in order. True if cancelled."""
    def cancelled() -> bool:
        return should_cancel is not None and bool(should_cancel())

    if workers <= 1:
        for i in range(n):
            if cancelled():
                return True
            consume(i, work(i))
        return False
    pending: deque[tuple[int, Future]] = deque()
    stop = False
    next_index = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hn-preprocess") as pool:
        try:
            while pending or (next_index < n and not stop):
                while not stop and next_index < n and len(pending) < 2 * workers:
                    if cancelled():
                        stop = True
                        break
                    pending.append((next_index, pool.submit(work, next_index)))
                    next_index += 1
                if not pending:
                    break
                index, future = pending.popleft()
                consume(index, future.result())
                if not stop and cancelled():
                    stop = True
                if stop:  # drop queued work; running items finish and are consumed
                    for _, queued in pending:
                        queued.cancel()
                    kept = deque((i, f) for i, f in pending if not f.cancelled())
                    pending = kept
        except BaseException:
            for _, queued in pending:
                queued.cancel()
            raise
    return stop


def preprocess(dataset: Dataset, config: PreprocessConfig, *,
               progress: ProgressFn | None = None,
               should_cancel: CancelFn | None = None,
               upscale: UpscaleFn | None = None) -> PreprocessResult:
    """Apply `config` to every item of `dataset`; see PreprocessConfig and the module docstring.

    progress(done, total) is called after source items (at most ~200 times, always at the
    end); should_cancel() is polled between items. Source files are only read. Raises
    ValueError for bad settings or an unusable output folder, and for bad files when
    config.on_bad_file == "fail".

    upscale(image) -> image, when given, enlarges (e.g. with an AI upscale model) every image that
    the plan would otherwise enlarge by resampling, before crop/fit; it needs an output folder.
    """
    cfg = config
    if not isinstance(dataset, Dataset):
        raise ValueError("dataset must be an HN_DATASET (connect LoadDataset's output)")
    if upscale is not None and not cfg.output_directory:
        raise ValueError("upscale_model needs an output_directory: the upscaled images are written there "
                         "(set output_directory, or disconnect upscale_model to resize lazily)")
    buckets = (make_bucket_resolutions((cfg.width, cfg.height), cfg.bucket_min, cfg.bucket_max,
                                       cfg.bucket_step) if cfg.mode == "buckets" else None)
    folder: OutputFolder | None = None
    if cfg.output_directory:
        folder = prepare_output_folder(cfg.output_directory, cfg.if_output_exists, dataset.root,
                                       (item.path for item in dataset.items))
    ctx = _Context(cfg, buckets, folder.path if folder else None, upscale)
    items: list[DatasetItem] = []
    files: list[str] = []
    hashes: dict[str, str] = {}
    bad: list[BadFile] = []
    kinds: Counter = Counter()
    notes: list[tuple[str, str]] = []
    assignments: list[tuple[str, BucketChoice]] = []
    upscaled = model_upscaled = alpha_kept = 0
    done = 0
    total = len(dataset.items)
    progress_every = max(1, total // _PROGRESS_CALLS)

    def consume(index: int, outcome: _ItemOutcome) -> None:
        nonlocal upscaled, model_upscaled, alpha_kept, done
        source = dataset.items[index]
        items.extend(outcome.items)
        files.extend(outcome.files)
        hashes.update(outcome.hashes)
        kinds.update(outcome.kinds)
        upscaled += outcome.upscaled
        model_upscaled += outcome.model_upscaled
        alpha_kept += outcome.alpha_kept
        notes.extend((source.path, n) for n in outcome.notes)
        if outcome.bad is not None:
            bad.append(outcome.bad)
        if outcome.bucket is not None:
            assignments.append((source.path, outcome.bucket))
        done += 1
        if progress is not None and (done % progress_every == 0 or done == total):
            progress(done, total)

    error = ""
    cancelled = False
    try:
        cancelled = _run_ordered(total, lambda i: _process_item(i, dataset.items[i], ctx),
                                 cfg.worker_count, should_cancel, consume)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if folder is not None:
            write_manifest(folder.path, files, cfg.to_dict(), complete=not cancelled and not error,
                           error=error, hashes=hashes)
    history = list(dataset.history) + [{"step": "preprocess", **cfg.to_dict(),
                                        "cancelled": cancelled}]
    new_dataset = Dataset(items, dataset.root, history)
    stats: dict[str, Any] = {"sources": total, "processed": done, "outputs": len(items),
                             "skipped": len(bad), "upscaled": upscaled, "model_upscaled": model_upscaled,
                             "alpha_kept": alpha_kept,
                             **dict(kinds)}
    for _, note in notes:
        stats[note] = stats.get(note, 0) + 1
    report = _format_report(cfg, new_dataset, stats, bad, notes, assignments, folder, cancelled)
    return PreprocessResult(new_dataset, report, folder.path if folder else "",
                            [os.path.join(folder.path, f) for f in files] if folder else [],
                            bad, stats, cancelled)


_KIND_LABELS = (("split", "split tiles"), ("focal", "focal crops"), ("auto_size", "auto-sized crops"),
                ("crop", "cover-crops"), ("fit", "padded fits"), ("buckets", "bucketed"),
                ("keep", "kept size"), ("flipped", "flipped copies"))


def _format_report(cfg: PreprocessConfig, dataset: Dataset, stats: dict[str, Any],
                   bad: list[BadFile], notes: list[tuple[str, str]],
                   assignments: list[tuple[str, BucketChoice]], folder: OutputFolder | None,
                   cancelled: bool) -> str:
    lines = [f"Preprocess: {stats['processed']} of {stats['sources']} source image(s) -> "
             f"{stats['outputs']} output(s); mode {cfg.mode}, target {cfg.width}x{cfg.height}"]
    if cancelled:
        lines.append(f"CANCELLED after {stats['processed']} of {stats['sources']} images; the "
                     "dataset holds only their outputs and no partial files were left.")
    lines.append("Outputs: " + ", ".join(f"{label} {stats[key]}" for key, label in _KIND_LABELS
                                         if stats.get(key)) if stats["outputs"] else "Outputs: none")
    if stats.get("model_upscaled"):
        lines.append(f"Upscaled with upscale_model before crop/fit (smaller than the target): "
                     f"{stats['model_upscaled']}")
    if stats.get("alpha_kept"):
        lines.append(f"Kept the alpha channel (RGBA PNG, colours under it kept) of {stats['alpha_kept']} "
                     "output(s), for alpha_loss_weight")
    if stats.get("upscaled"):
        lines.append(f"Upscaled (source smaller than the output): {stats['upscaled']}")
    if cfg.focal_crop:
        lines.append("Focal crop: " + FACES_NOTE
                     + (f" (face_weight {cfg.face_weight} unused)" if cfg.face_weight > 0 else ""))
    if stats.get("auto_size_no_fit"):
        lines.append(f"Auto-size: no size within error threshold {cfg.auto_size_error_threshold} "
                     f"for {stats['auto_size_no_fit']} image(s) (no output, as in A1111)")
        for path, note in notes[:_REPORT_LIST_LIMIT]:
            if note == "auto_size_no_fit":
                lines.append(f"  no auto size: {path}")
    if cfg.mode == "buckets":
        groups = dataset.group_by_size()
        lines.append("Buckets: " + ", ".join(f"{w}x{h}: {len(ix)}" for (w, h), ix in groups.items()))
        if assignments:
            mean_err = sum(c.aspect_error for _, c in assignments) / len(assignments)
            lines.append(f"Mean aspect error cropped away: {mean_err:.4f}"
                         + (" (no_upscale: one bucket per size)" if cfg.no_upscale else ""))
            for path, choice in assignments[:_REPORT_LIST_LIMIT]:
                lines.append(f"  {os.path.basename(path)} -> {choice.bucket[0]}x{choice.bucket[1]}"
                             f" (scaled to {choice.resized[0]}x{choice.resized[1]})")
    if cfg.mode == "keep":
        lines.append("Keep: sizes kept, trimmed (centred) to multiples of 8 where needed")
    lines.append(f"Captions: existing_caption={cfg.existing_caption}"
                 + (f", caption_text {cfg.caption_text!r}" if cfg.caption_text else ""))
    if bad:
        lines.append(f"Skipped: {len(bad)}")
        for b in bad[:_REPORT_LIST_LIMIT]:
            lines.append(f"  skipped {b.path}: {BAD_REASONS.get(b.reason, b.reason)}"
                         + (f" ({b.detail})" if b.detail else ""))
    lines.append(folder.note if folder else
                 "Output: none written; items are transformed lazily when training loads them")
    lines.append(f"Workers: {cfg.worker_count}")
    return "\n".join(lines)
