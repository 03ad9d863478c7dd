"""HypernetworkWD14Tag: WD14 (SmilingWolf) tags for a dataset and/or an IMAGE batch.

Tagging dataset items whose file is the final image reads the files directly (and can write
captions as each batch finishes); items with pending Preprocess steps are materialised first, so
the tags describe the image training will see. Caption files are written next to the item's file
(the source image for lazy Preprocess items) only in the write modes, never with 'off'.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from ..hypernet.data.dataset import Dataset, DatasetItem, load_item_image
from ..hypernet.tagger.captions import CaptionClaims, dedupe_tags
from ..hypernet.tagger.pipeline import (
    CAPTION_MODES,
    KNOWN_TAGGERS,
    SORT_MODES,
    TaggerFiles,
    TagOptions,
    TagResult,
    available_providers,
    caption_path_for,
    count_tags,
    download_tagger,
    find_taggers,
    list_taggers,
    load_tagger,
    merge_caption,
    resolve_tagger,
    tag_image_files,
    tag_images,
    unload,
    write_caption,
)
from . import bridge
from .dataset import HostProgress
from .sockets import CATEGORY_DATASET, HN_DATASET

logger = logging.getLogger(__name__)

DOWNLOAD_PREFIX = "(download) "
_REPORT_LIST_LIMIT = 50
_TOP_TAGS = 15


def tagger_folders() -> list[Path]:
    bridge.register_model_folders()
    return bridge.model_folders(bridge.TAGGER_FOLDER)


def model_choices() -> list[str]:
    """Installed taggers, then every known tagger as '(download) name'.

    The download entries stay listed after the download (they then use the local copy), so a saved
    workflow that names one keeps validating.
    """
    return list_taggers(tagger_folders()) + [DOWNLOAD_PREFIX + name for name in KNOWN_TAGGERS]


class _DownloadProgress:
    """download_tagger's (file, bytes done, total) callback -> the node's bar in percent; checks Cancel."""

    def __init__(self) -> None:
        self._bar = bridge.Progress(100)

    def __call__(self, label: str, done: int, total: int | None) -> None:
        bridge.raise_if_interrupted()
        if total:
            self._bar.update(int(100 * done / total))


def resolve_model(choice: str) -> TaggerFiles:
    """The two files of the chosen tagger; a '(download) name' entry downloads it if it is missing."""
    folders = tagger_folders()
    if not choice.startswith(DOWNLOAD_PREFIX):
        return resolve_tagger(choice, folders)
    name = choice[len(DOWNLOAD_PREFIX):]
    if name not in KNOWN_TAGGERS:
        raise ValueError(f"model: {choice!r} is not a known tagger; pick one from the list")
    found = find_taggers(folders)
    if name in found:
        return found[name]
    if not folders:
        raise FileNotFoundError("ComfyUI has no 'wd14_tagger' model folder registered; add one in "
                                "extra_model_paths.yaml or create models/wd14_tagger")
    logger.info("WD14 tagger %s is not installed; downloading it into %s", name, folders[0])
    return download_tagger(name, folders[0], progress=_DownloadProgress())


def _progress():
    bar = HostProgress()

    def update(done: int, total: int) -> None:
        bar(done, total)
        bridge.raise_if_interrupted()

    return update


def _materialised(model, items: Sequence[DatasetItem], options: TagOptions, batch_size: int) -> list[TagResult]:
    """Tag the items' final images (after their Preprocess steps), one batch in memory at a time."""
    progress = _progress()
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


def tag_dataset(model, dataset: Dataset, options: TagOptions, batch_size: int, write_captions: str,
                caption_extension: str) -> list[TagResult]:
    """One TagResult per dataset item, in order; captions written per `write_captions`."""
    items = dataset.items
    if all(not item.transforms for item in items):
        return tag_image_files(model, [item.path for item in items], options, batch_size=batch_size,
                               write_captions=write_captions, caption_extension=caption_extension,
                               progress=_progress())
    if write_captions != "off":
        for item in items:
            caption_path_for(item.path, caption_extension)  # a bad extension fails before any work
    results = _materialised(model, items, options, batch_size)
    if write_captions != "off":
        _write_source_captions(items, results, write_captions, caption_extension)
    return results


def new_caption(old: str, result: TagResult, mode: str) -> str:
    """The item's caption in the output dataset ('off' and 'overwrite' both use the tags alone)."""
    if not result.tags and result.error:
        return old
    if mode in ("append", "prepend"):
        return merge_caption(old, result.tags, mode)
    if mode == "only_missing" and old.strip():
        return old
    return merge_caption("", result.tags, "overwrite")


def captioned_dataset(dataset: Dataset, results: Sequence[TagResult], mode: str, history: dict) -> Dataset:
    items = [dataclasses.replace(item, caption=new_caption(item.caption, result, mode))
             for item, result in zip(dataset.items, results)]
    return Dataset(items, dataset.root, list(dataset.history) + [history])


def format_report(model_name: str, image_results: Sequence[TagResult], dataset_results: Sequence[TagResult],
                  write_captions: str) -> str:
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


class HypernetworkWD14Tag:
    DESCRIPTION = ("Tags images with a WD14 (SmilingWolf) ONNX tagger: a whole dataset (its tags become the "
                   "captions, optionally written to caption files) and/or an image batch.")
    CATEGORY = CATEGORY_DATASET
    RETURN_TYPES = (HN_DATASET, "STRING")
    RETURN_NAMES = ("dataset", "tags")
    OUTPUT_IS_LIST = (False, True)
    OUTPUT_TOOLTIPS = ("The dataset with the tags as captions (per write_captions); empty without a dataset input.",
                       "One tag string per image: the image input's images first, then the dataset's.")
    OUTPUT_NODE = True
    FUNCTION = "tag"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_choices(), {
                    "tooltip": "A tagger from the wd14_tagger model folders (<name>.onnx + <name>.csv), or "
                               "'(download) name' to fetch it from Hugging Face into the first such folder."}),
                "general_threshold": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 1.0, "step": 0.05,
                                                "tooltip": "Keep general tags at least this confident."}),
                "character_threshold": ("FLOAT", {"default": 0.85, "min": 0.0, "max": 1.0, "step": 0.05,
                                                  "tooltip": "Keep character tags at least this confident."}),
                "exclude_tags": ("STRING", {"default": "",
                                            "tooltip": "Comma-separated tags never to output."}),
                "replace_underscores": ("BOOLEAN", {"default": True,
                                                    "tooltip": "long_hair -> long hair (emoticons such as ^_^ kept)."}),
                "escape_brackets": ("BOOLEAN", {"default": True,
                                                "tooltip": "Write ( ) as \\( \\) so prompts do not read them as "
                                                           "weights."}),
                "sort": (list(SORT_MODES), {"default": "confidence",
                                            "tooltip": "Tag order: most confident first, alphabetical, or the "
                                                       "model's own order."}),
                "characters_first": ("BOOLEAN", {"default": True,
                                                 "tooltip": "Put character tags before general tags."}),
                "include_rating": ("BOOLEAN", {"default": False,
                                               "tooltip": "Add the most likely rating (general, sensitive, ...)."}),
                "max_tags": ("INT", {"default": 0, "min": 0, "max": 1000,
                                     "tooltip": "Keep at most this many tags per image; 0 = no limit."}),
                "write_captions": (list(CAPTION_MODES), {
                    "default": "off",
                    "tooltip": "Caption files next to the dataset's images: off (write none), overwrite, append "
                               "or prepend to the existing caption (duplicates dropped), only_missing."}),
                "batch_size": ("INT", {"default": 4, "min": 1, "max": 64,
                                       "tooltip": "Images per tagger run (more is faster, needs more memory)."}),
                "unload_after": ("BOOLEAN", {"default": False,
                                             "tooltip": "Free the tagger model after this run (else it stays "
                                                        "loaded for the next run)."}),
            },
            "optional": {
                "dataset": (HN_DATASET, {"tooltip": "Tag every image of this dataset (from Load Dataset or "
                                                    "Preprocess)."}),
                "image": ("IMAGE", {"tooltip": "Tag the images of this batch."}),
                "caption_extension": ("STRING", {"default": ".txt",
                                                 "tooltip": "Extension of the caption files written."}),
            },
        }

    def tag(self, model, general_threshold, character_threshold, exclude_tags, replace_underscores,
            escape_brackets, sort, characters_first, include_rating, max_tags, write_captions, batch_size,
            unload_after, dataset=None, image=None, caption_extension=".txt"):
        if dataset is None and image is None:
            raise ValueError("WD14 Tagger: nothing to tag; connect a dataset (Load Dataset / Preprocess) "
                             "and/or an image")
        options = TagOptions(general_threshold=general_threshold, character_threshold=character_threshold,
                             exclude_tags=exclude_tags, replace_underscores=replace_underscores,
                             escape_brackets=escape_brackets, sort=sort, characters_first=characters_first,
                             include_rating=include_rating, max_tags=max_tags)
        available_providers()  # a missing onnxruntime fails here, before any download
        files = resolve_model(model)
        tagger = load_tagger(files)
        try:
            image_results = (tag_images(tagger, list(image), options, batch_size=batch_size, progress=_progress())
                             if image is not None else [])
            dataset_results = (tag_dataset(tagger, dataset, options, batch_size, write_captions, caption_extension)
                               if dataset is not None else [])
        finally:
            if unload_after:
                unload(str(files.model_path))
        history = {"step": "wd14_tag", "model": files.name, "write_captions": write_captions, **options.to_dict()}
        out = (captioned_dataset(dataset, dataset_results, write_captions, history) if dataset is not None
               else Dataset([], "", [history]))
        report = format_report(files.name, image_results, dataset_results, write_captions)
        logger.info("%s", report.splitlines()[0])
        strings = [r.caption for r in image_results] + [r.caption for r in dataset_results]
        return {"ui": {"text": [report]}, "result": (out, strings)}
