"""The editor's non-destructive edits of a dataset folder, kept in one JSON file inside it.

`.hypernetwork_edits.json` holds the images excluded from training (kept on disk) and crop
instructions (a box in fractions of the oriented image, so it survives a resize of the file).
The file is hidden, so LoadDataset never mistakes it for data; LoadDataset applies it with
`apply_edits`. Writes are atomic and checked against the version the editor loaded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..util.atomic import atomic_write_text
from .dataset import Dataset, DatasetItem, crop_transform
from .index import content_hash

SIDECAR_NAME = ".hypernetwork_edits.json"
FORMAT = "hn_dataset_edits"
VERSION = 1

Box = tuple[float, float, float, float]
#: The smallest crop side, as a fraction of the image (the route also asks for MIN_CROP_PIXELS).
MIN_CROP_FRACTION = 0.01
MIN_CROP_PIXELS = 16


class ConflictError(Exception):
    """What the client based its edit on changed on disk meanwhile; `changes` says what."""

    def __init__(self, message: str, changes: list[dict[str, Any]]):
        super().__init__(message)
        self.changes = changes


def validate_box(box: Any, field_name: str = "box") -> Box:
    """A crop box (left, top, right, bottom) in fractions 0..1 of the image, non-empty."""
    if not isinstance(box, (list, tuple)) or len(box) != 4 or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise ValueError(f"{field_name}: expected [left, top, right, bottom], 4 numbers (fractions of the "
                         f"image), got {box!r}"[:300])
    try:
        values = tuple(float(v) for v in box)
    except OverflowError:
        raise ValueError(f"{field_name}: the numbers must be fractions between 0 and 1") from None
    left, top, right, bottom = values
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
        raise ValueError(f"{field_name}: {list(values)} must satisfy 0 <= left < right <= 1 and "
                         "0 <= top < bottom <= 1 (fractions of the image)")
    if right - left < MIN_CROP_FRACTION or bottom - top < MIN_CROP_FRACTION:
        raise ValueError(f"{field_name}: {list(values)} keeps less than {MIN_CROP_FRACTION:.0%} of the image's "
                         "width or height; draw a larger box")
    return values  # type: ignore[return-value]


@dataclass
class Edits:
    """Exclusions and crops of one folder; `version` is the file's content hash (None: no file)."""

    excluded: set[str] = field(default_factory=set)
    crops: dict[str, Box] = field(default_factory=dict)
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "excluded": sorted(self.excluded),
                "crops": {name: list(box) for name, box in sorted(self.crops.items())}}

    @classmethod
    def from_dict(cls, data: Any, source: str = "edits") -> "Edits":
        if not isinstance(data, Mapping) or data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"{source} is not a dataset-editor file (format {FORMAT!r} expected)")
        excluded = data.get("excluded", [])
        crops = data.get("crops", {})
        if not isinstance(excluded, list) or not all(isinstance(n, str) for n in excluded):
            raise ValueError(f"{source}: 'excluded' must be a list of image names")
        if not isinstance(crops, Mapping):
            raise ValueError(f"{source}: 'crops' must map image names to boxes")
        return cls(set(excluded), {str(k): validate_box(v, f"{source}: crop of {k!r}") for k, v in crops.items()})


def sidecar_path(root: str) -> str:
    return os.path.join(root, SIDECAR_NAME)


def read_raw(root: str) -> bytes | None:
    """The sidecar's bytes (None: there is none). A symlinked sidecar is not followed."""
    path = sidecar_path(root)
    if os.path.islink(path):
        raise ValueError(f"{path} is a symlink; the editor only reads its own file - remove the link")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def read_edits(root: str) -> Edits:
    """The folder's edits (empty when there is no sidecar). ValueError names a broken file."""
    raw = read_raw(root)
    if raw is None:
        return Edits()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{sidecar_path(root)} is not valid JSON ({exc}); fix or delete it") from None
    edits = Edits.from_dict(data, sidecar_path(root))
    edits.version = content_hash(raw)
    return edits


def write_edits(root: str, edits: Edits, base_version: str | None, *, force: bool = False) -> Edits:
    """Write `edits` atomically unless the file changed since `base_version` (ConflictError)."""
    current = read_edits(root)
    if not force and current.version != base_version:
        changes = [{"file": SIDECAR_NAME, "kind": "edits",
                    "excluded_added": sorted(current.excluded - edits.excluded),
                    "excluded_removed": sorted(edits.excluded - current.excluded),
                    "crops_changed": sorted(n for n in set(current.crops) | set(edits.crops)
                                            if current.crops.get(n) != edits.crops.get(n))}]
        raise ConflictError("exclusions/crops were changed by someone else since you loaded them", changes)
    text = json.dumps(edits.to_dict(), indent=1, ensure_ascii=False) + "\n"
    atomic_write_text(sidecar_path(root), text)
    return Edits(set(edits.excluded), dict(edits.crops), content_hash(text.encode("utf-8")))


def crop_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop box in whole pixels (left, top, width, height), at least 1x1, inside the image."""
    left = min(width - 1, max(0, round(box[0] * width)))
    top = min(height - 1, max(0, round(box[1] * height)))
    right = max(left + 1, min(width, round(box[2] * width)))
    bottom = max(top + 1, min(height, round(box[3] * height)))
    return left, top, right - left, bottom - top


def apply_edits(dataset: Dataset, edits: Edits) -> tuple[Dataset, dict[str, int]]:
    """LoadDataset's dataset without excluded images and with crop instructions as a first
    Transform (Preprocess and training then work on the cropped image; files are not touched)."""
    root = dataset.root
    items: list[DatasetItem] = []
    stats = {"excluded": 0, "cropped": 0}
    for item in dataset.items:
        name = os.path.relpath(item.path, root).replace(os.sep, "/")
        if name in edits.excluded:
            stats["excluded"] += 1
            continue
        box = edits.crops.get(name)
        if box is not None:
            transform = crop_transform(*crop_pixels(box, item.width, item.height))
            item = DatasetItem(item.path, item.width, item.height, item.caption, item.repeats,
                               (transform,) + item.transforms)
            stats["cropped"] += 1
        items.append(item)
    if not items and dataset.items:
        raise ValueError(f"every image of {root} is excluded in the dataset editor; include some images again "
                         "(Edit dataset...) or remove " + sidecar_path(root))
    history = list(dataset.history) + [{"step": "editor_edits", **stats}]
    return Dataset(items, root, history), stats


def with_editor_edits(dataset: Dataset, report: str) -> tuple[Dataset, str]:
    """The dataset editor's exclusions and crop instructions (if the folder has any) applied, and
    a line saying so added to LoadDataset's report."""
    edits = read_edits(dataset.root)
    if not edits.excluded and not edits.crops:
        return dataset, report
    edited, stats = apply_edits(dataset, edits)
    note = (f"Dataset editor: {stats['excluded']} image(s) excluded from training, {stats['cropped']} with a "
            f"crop instruction (see {SIDECAR_NAME}; Edit dataset... to change).")
    return edited, report + "\n" + note
