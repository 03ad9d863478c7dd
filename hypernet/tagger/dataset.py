"""WD14 tagging of a whole Dataset: the tags become captions (and optionally caption files).

Tagging items whose file is the final image reads the files directly; items with pending
Preprocess steps are materialised first. Caption files are written next to the item's file (the
source image for lazy Preprocess items) only in the write modes, never with 'off'.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from ..data.dataset import Dataset, DatasetItem, load_item_image
from .captions import (MERGE_MODES, CaptionClaims, caption_path_for, dedupe_tags, merge_caption, validate_caption_mode,
                       write_caption)
from .model import TaggerModel
from .pipeline import Progress, count_tags, tag_image_files, tag_images
from .tags import TagOptions, TagResult

logger = logging.getLogger(__name__)

_REPORT_LIST_LIMIT = 50
_TOP_TAGS = 15


def _materialised(model: TaggerModel, items: Sequence[DatasetItem], options: TagOptions, batch_size: int,
                  progress: Progress | None) -> list[TagResult]:
    """Tag the items' final images (after their Preprocess steps), one batch in memory at a time."""
    results: list[TagResult] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        slots: list[TagResult | None] = []
        images = []
        for item in chunk:
            try:
                images.append(load_item_image(item))
                slots.append(None)
            except ValueError as exc:
                logger.warning("WD14 tagger: skipping %s: %s", item.path, exc)
                slots.append(TagResult(source=item.path, error=f"cannot read image: {exc}"))
        tagged = iter(tag_images(model, images, options, batch_size=max(1, len(images)))) if images else iter(())
        for item, slot in zip(chunk, slots):
            if slot is None:
                slot = next(tagged)
                slot.source = item.path
            results.append(slot)
        if progress:
            progress(len(results), len(items))
    return results


def _write_source_captions(items: Sequence[DatasetItem], results: Sequence[TagResult], mode: str,
                           caption_extension: str) -> None:
    """One caption per source file for materialised items: the tags of all its items, first seen first."""
    by_source: dict[str, list[str]] = {}
    for item, result in zip(items, results):
        if result.ok:
            by_source.setdefault(item.path, []).extend(result.tags)
    claims = CaptionClaims(caption_extension)
    for item, result in zip(items, results):
        if not result.ok or item.path not in by_source:
            continue
        tags = dedupe_tags(by_source.pop(item.path))
        note = claims.claim(item.path)
        if note is not None:
            logger.warning("WD14 tagger: %s %s", item.path, note)
            result.caption_path = caption_path_for(item.path, caption_extension)
            result.caption_action, result.caption_note = "shared", note
            continue
        try:
            result.caption_path, result.caption_action = write_caption(item.path, tags, mode, caption_extension)
        except (OSError, ValueError) as exc:
            logger.warning("WD14 tagger: caption for %s not written: %s", item.path, exc)
            result.caption_action = "error"
            result.error = f"caption not written: {exc}"


def tag_dataset(model: TaggerModel, dataset: Dataset, options: TagOptions, batch_size: int, write_captions: str,
                caption_extension: str, progress: Progress | None = None) -> list[TagResult]:
    """One TagResult per dataset item, in order; captions written per `write_captions`.

    Items used as they are read their files directly (captions written as each batch finishes);
    items with pending Preprocess steps are materialised first, so the tags describe the image
    training will see, and get one caption per source file.
    """
    items = dataset.items
    if all(not item.transforms for item in items):
        return tag_image_files(model, [item.path for item in items], options, batch_size=batch_size,
                               write_captions=write_captions, caption_extension=caption_extension,
                               progress=progress)
    if write_captions != "off":
        for item in items:
            caption_path_for(item.path, caption_extension)  # a bad extension fails before any work
    results = _materialised(model, items, options, batch_size, progress)
    if write_captions != "off":
        _write_source_captions(items, results, write_captions, caption_extension)
    return results


def new_caption(old: str, result: TagResult, mode: str) -> str:
    """The item's caption in the output dataset ('off' and 'overwrite' both use the tags alone)."""
    if not result.tags and result.error:
        return old
    mode = validate_caption_mode(mode)
    if mode in MERGE_MODES:
        return merge_caption(old, result.tags, mode)
    if mode == "only_missing" and old.strip():
        return old
    return merge_caption("", result.tags, "overwrite")


def captioned_dataset(dataset: Dataset, results: Sequence[TagResult], mode: str, history: dict) -> Dataset:
    """The output dataset: each item's caption replaced per `mode`, `history` appended."""
    items = [dataclasses.replace(item, caption=new_caption(item.caption, result, mode))
             for item, result in zip(dataset.items, results)]
    return Dataset(items, dataset.root, list(dataset.history) + [history])


def format_report(model_name: str, image_results: Sequence[TagResult], dataset_results: Sequence[TagResult],
                  write_captions: str) -> str:
    """The node's text report: counts, caption actions, most frequent tags, per-image lines."""
    everything = list(image_results) + list(dataset_results)
    skipped = [r for r in everything if r.error]
    lines = [f"WD14 Tagger ({model_name}): {len(everything) - len(skipped)} of {len(everything)} image(s) tagged"
             + (f" ({len(image_results)} from the image input, {len(dataset_results)} from the dataset)"
                if image_results and dataset_results else "")]
    actions = Counter(r.caption_action for r in dataset_results if r.caption_action)
    if write_captions == "off":
        lines.append("Caption files: not written (write_captions off); the tags are the output dataset's captions"
                     if dataset_results else "Caption files: none (no dataset connected)")
    else:
        lines.append("Caption files: " + (", ".join(f"{k} {v}" for k, v in sorted(actions.items())) or "none"))
    top = count_tags(everything).most_common(_TOP_TAGS)
    if top:
        lines.append("Most frequent: " + ", ".join(f"{tag} ({n})" for tag, n in top))
    for r in skipped[:_REPORT_LIST_LIMIT]:
        lines.append(f"  skipped {r.source}: {r.error}")
    for r in [r for r in dataset_results if r.caption_note][:_REPORT_LIST_LIMIT]:
        lines.append(f"  caption not written for {r.source}: {r.caption_note}")
    for r in everything[:_REPORT_LIST_LIMIT]:
        if not r.error:
            lines.append(f"  {Path(r.source).name}: {r.caption}")
    if len(everything) > _REPORT_LIST_LIMIT:
        lines.append(f"  ... {len(everything) - _REPORT_LIST_LIMIT} more")
    return "\n".join(lines)
