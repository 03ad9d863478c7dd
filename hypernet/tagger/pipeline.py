"""WD14 tagger core: tag in-memory images or image files in true batches, optionally writing
captions as each batch finishes. The ComfyUI node is a thin layer over these functions.

Decoding failures are per-image skips (TagResult.error set, logged), never a batch crash; batched
results equal one-by-one results because every image goes through the same preprocessing.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .captions import CAPTION_MODES, CaptionClaims, caption_path_for, merge_caption, validate_caption_mode, write_caption
from .download import DEFAULT_TAGGER, KNOWN_TAGGERS, download_tagger, tagger_download_urls
from .errors import (
    TaggerDependencyError,
    TaggerDownloadError,
    TaggerFilesMissingError,
    TaggerModelError,
)
from .files import TaggerFiles, find_incomplete_taggers, find_taggers, list_taggers, resolve_tagger
from .model import (
    TaggerModel,
    available_providers,
    choose_providers,
    create_session,
    load_tagger,
    unload,
    unload_all,
)
from .preprocess import image_from_array, load_image, preprocess_image
from .tags import KAOMOJI, SORT_MODES, TagOptions, TagResult, TagTable, load_tag_table, select_tags

logger = logging.getLogger(__name__)

__all__ = [
    "CAPTION_MODES", "DEFAULT_TAGGER", "KAOMOJI", "KNOWN_TAGGERS", "SORT_MODES",
    "TagOptions", "TagResult", "TagTable", "TaggerFiles", "TaggerModel",
    "TaggerDependencyError", "TaggerDownloadError", "TaggerFilesMissingError", "TaggerModelError",
    "available_providers", "caption_path_for", "choose_providers", "count_tags", "create_session",
    "download_tagger", "find_image_files", "find_incomplete_taggers", "find_taggers", "image_from_array",
    "list_taggers", "load_image", "load_tag_table", "load_tagger", "merge_caption", "preprocess_image",
    "resolve_tagger", "select_tags", "tag_image_files", "tag_images", "tagger_download_urls", "unload",
    "unload_all", "validate_caption_mode", "write_caption",
]

ImageInput = Any  # PIL.Image.Image | HWC array/tensor (ComfyUI IMAGE item) | str | os.PathLike
Progress = Callable[[int, int], None]

_DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError)


def _to_pil(item: ImageInput) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (str, os.PathLike)):
        return load_image(item)
    return image_from_array(item)


def _source_name(item: ImageInput, index: int) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else f"image[{index}]"


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def _prepare_batch(
    model: TaggerModel, items: Sequence[ImageInput], start: int
) -> tuple[list[TagResult], list[np.ndarray], list[int]]:
    """Decode and preprocess one batch: its results (errors filled in), model rows, row slots."""
    results: list[TagResult] = []
    rows: list[np.ndarray] = []
    slots: list[int] = []
    for offset, item in enumerate(items):
        source = _source_name(item, start + offset)
        try:
            rows.append(preprocess_image(_to_pil(item), model.input_size))
            slots.append(len(results))
            results.append(TagResult(source=source))
        except _DECODE_ERRORS as exc:
            logger.warning("WD14 tagger: skipping %s: cannot read image (%s)", source, exc)
            results.append(TagResult(source=source, error=f"cannot read image: {exc}"))
    return results, rows, slots


def _iter_batches(
    model: TaggerModel, items: Sequence[ImageInput], options: TagOptions, batch_size: int
) -> Iterable[list[TagResult]]:
    """Tagged batches in order. The next batch is decoded and preprocessed on a helper thread
    while the session runs the current one (PIL, numpy and onnxruntime release the GIL), so the
    preprocessing hides behind the model; errors other than decode failures propagate as raised."""
    starts = list(range(0, len(items), batch_size))
    if not starts:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wd14-prefetch") as pool:
        pending = pool.submit(_prepare_batch, model, items[0:batch_size], 0)
        try:
            for position, start in enumerate(starts):
                results, rows, slots = pending.result()
                if position + 1 < len(starts):
                    following = starts[position + 1]
                    pending = pool.submit(_prepare_batch, model, items[following:following + batch_size], following)
                if rows:
                    probs = model.predict(np.stack(rows, axis=0))
                    for slot, p in zip(slots, probs):
                        results[slot] = select_tags(p, model.table, options, results[slot].source)
                yield results
        finally:
            pending.cancel()  # a consumer that stops early (or an error) leaves no work queued


def tag_images(
    model: TaggerModel,
    images: Sequence[ImageInput],
    options: TagOptions | None = None,
    batch_size: int = 4,
    progress: Progress | None = None,
) -> list[TagResult]:
    """Tag in-memory images (PIL, HWC arrays/tensors) or paths; one TagResult per input, in order."""
    options = options or TagOptions()
    _check_batch_size(batch_size)
    out: list[TagResult] = []
    for batch in _iter_batches(model, list(images), options, batch_size):
        out.extend(batch)
        if progress:
            progress(len(out), len(images))
    return out


def tag_image_files(
    model: TaggerModel,
    paths: Sequence[str | os.PathLike],
    options: TagOptions | None = None,
    batch_size: int = 4,
    write_captions: str = "off",
    caption_extension: str = ".txt",
    progress: Progress | None = None,
) -> list[TagResult]:
    """Tag image files; captions are written (per `write_captions`) as each batch finishes.

    Skipped (undecodable) images never get a caption written; a caption that cannot be written
    is reported on that image (error set, caption_action 'error') and the run goes on.
    Images are only read.
    """
    options = options or TagOptions()
    _check_batch_size(batch_size)
    write_captions = validate_caption_mode(write_captions)
    paths = [Path(p) for p in paths]
    if write_captions != "off":
        for p in paths:
            caption_path_for(p, caption_extension)  # reject a bad extension before any work
    out: list[TagResult] = []
    claims = CaptionClaims(caption_extension)
    for batch in _iter_batches(model, paths, options, batch_size):
        for result in batch:
            if not result.ok:
                continue
            note = claims.claim(result.source) if write_captions != "off" else None
            if note is not None:
                result.caption_path = caption_path_for(result.source, caption_extension)
                result.caption_action, result.caption_note = "shared", note
                logger.warning("WD14 tagger: %s %s", result.source, note)
                continue
            try:
                result.caption_path, result.caption_action = write_caption(
                    result.source, result.tags, write_captions, caption_extension
                )
            except (OSError, ValueError) as exc:  # e.g. an existing caption that is not UTF-8
                logger.warning("WD14 tagger: caption for %s not written: %s", result.source, exc)
                result.caption_action = "error"
                result.error = f"caption not written: {exc}"
        out.extend(batch)
        if progress:
            progress(len(out), len(paths))
    return out


def find_image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Sorted image files (extensions PIL can open) in `folder`; hidden files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist or is not a folder; pick an existing folder")
    exts = {e.lower() for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(
        p for p in pattern
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")
    )


def count_tags(results: Iterable[TagResult]) -> Counter:
    """Tag frequencies over a dataset (formatted tags, as written)."""
    counter: Counter = Counter()
    for r in results:
        counter.update(r.tags)
    return counter
