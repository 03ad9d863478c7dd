"""HN_DATASET: a light, serialisable description of training images, materialised lazily.

A `Dataset` is a list of `DatasetItem`s. Each item names one image file (decoded only when
needed), its caption, its repeat count, the file's oriented pixel size, and a chain of
`Transform`s (crop box -> resize -> optional pad -> optional mirror) that Preprocess adds when it
does not write files. `load_item_image(item)` returns the final RGB image; `item.size` is its
size without decoding anything, so a trainer can group items into size buckets up front.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .images import DEFAULT_MAX_PIXELS, load_alpha, load_rgb

DATASET_FORMAT_VERSION = 1

Box = tuple[float, float, float, float]
Size = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Transform:
    """One resampling step on an item's image.

    The region `box` (left, top, right, bottom; float pixels of the step's input image) is
    resampled with Lanczos to `size`; if `canvas` is set the result is pasted at `offset` on a
    `canvas`-sized image filled with `fill` (fit mode); then mirrored left-right if `flip`.
    """

    box: Box
    size: Size
    canvas: Size | None = None
    offset: Size = (0, 0)
    fill: tuple[int, int, int] = (255, 255, 255)
    flip: bool = False

    def __post_init__(self) -> None:
        left, top, right, bottom = self.box
        if not (right > left and bottom > top):
            raise ValueError(f"Transform.box {self.box} is empty; right/bottom must exceed left/top")
        if self.size[0] < 1 or self.size[1] < 1:
            raise ValueError(f"Transform.size {self.size} must be at least 1x1")
        if self.canvas is not None:
            cw, ch = self.canvas
            ox, oy = self.offset
            if ox < 0 or oy < 0 or ox + self.size[0] > cw or oy + self.size[1] > ch:
                raise ValueError(
                    f"Transform.offset {self.offset} + size {self.size} does not fit canvas {self.canvas}")

    @property
    def out_size(self) -> Size:
        """Pixel size this step produces."""
        return self.canvas if self.canvas is not None else self.size

    def with_flip(self) -> "Transform":
        """The same step, mirrored."""
        return Transform(self.box, self.size, self.canvas, self.offset, self.fill, not self.flip)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"box": list(self.box), "size": list(self.size)}
        if self.canvas is not None:
            data.update(canvas=list(self.canvas), offset=list(self.offset), fill=list(self.fill))
        if self.flip:
            data["flip"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Transform":
        try:
            box = tuple(float(v) for v in data["box"])
            size = tuple(int(v) for v in data["size"])
            canvas = tuple(int(v) for v in data["canvas"]) if data.get("canvas") else None
            offset = tuple(int(v) for v in data.get("offset", (0, 0)))
            fill = tuple(int(v) for v in data.get("fill", (255, 255, 255)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"dataset transform {data!r} is malformed ({exc}); "
                             "re-create the dataset with LoadDataset/Preprocess") from exc
        if len(box) != 4 or len(size) != 2 or len(offset) != 2 or len(fill) != 3 or (
                canvas is not None and len(canvas) != 2):
            raise ValueError(f"dataset transform {data!r} has wrong tuple lengths; "
                             "re-create the dataset with LoadDataset/Preprocess")
        return cls(box, size, canvas, offset, fill, bool(data.get("flip", False)))  # type: ignore[arg-type]


def crop_transform(left: int, top: int, width: int, height: int) -> Transform:
    """An exact pixel crop (no resampling)."""
    return Transform((left, top, left + width, top + height), (width, height))


def apply_transform(img: Image.Image, t: Transform) -> Image.Image:
    """Apply one Transform to an RGB image (or to its alpha map, mode L: padding is then 0)."""
    left, top, right, bottom = t.box
    box_w, box_h = right - left, bottom - top
    is_exact_crop = (all(float(v).is_integer() for v in t.box)
                     and (box_w, box_h) == t.size)
    if is_exact_crop and (left, top, right, bottom) == (0, 0, img.width, img.height):
        out = img
    elif is_exact_crop:
        out = img.crop((int(left), int(top), int(right), int(bottom)))
    else:
        out = img.resize(t.size, Image.Resampling.LANCZOS, box=t.box)
    if t.canvas is not None:
        canvas = Image.new(img.mode, t.canvas, t.fill if img.mode == "RGB" else 0)
        canvas.paste(out, t.offset)
        out = canvas
    if t.flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


@dataclass(frozen=True, slots=True)
class DatasetItem:
    """One training image.

    path: absolute path of the image file to decode (a source file, or a Preprocess output).
    width, height: the file's pixel size after EXIF orientation (what `load_rgb` returns).
    caption: caption text ("" when none).
    repeats: how many times per epoch the trainer should draw it (kohya `N_name` folders).
    transforms: steps applied after decoding; empty for files used as they are.
    """

    path: str
    width: int
    height: int
    caption: str = ""
    repeats: int = 1
    transforms: tuple[Transform, ...] = ()

    @property
    def size(self) -> Size:
        """Final pixel size (width, height) of `load_item_image(self)`; also its bucket."""
        if self.transforms:
            return self.transforms[-1].out_size
        return (self.width, self.height)

    @property
    def stem(self) -> str:
        """File name without folder and extension."""
        return os.path.splitext(os.path.basename(self.path))[0]

    @property
    def flipped(self) -> bool:
        """True when the final image is mirrored relative to the file."""
        return sum(t.flip for t in self.transforms) % 2 == 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "width": self.width, "height": self.height,
                                "caption": self.caption, "repeats": self.repeats}
        if self.transforms:
            data["transforms"] = [t.to_dict() for t in self.transforms]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DatasetItem":
        try:
            path = data["path"]
            width, height = int(data["width"]), int(data["height"])
            caption = data.get("caption", "")
            repeats = int(data.get("repeats", 1))
            transforms = tuple(Transform.from_dict(t) for t in data.get("transforms", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"dataset item {str(data)[:200]} is malformed ({exc}); "
                             "re-create the dataset with LoadDataset") from exc
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ValueError(f"dataset item path {path!r} must be an absolute path string")
        if not isinstance(caption, str):
            raise ValueError(f"dataset item caption for {path} must be a string, got {caption!r}")
        if width < 1 or height < 1 or repeats < 0:
            raise ValueError(f"dataset item {path}: size {width}x{height} / repeats {repeats} invalid")
        return cls(path, width, height, caption, repeats, transforms)


def load_item_image(item: DatasetItem, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                    composite_alpha: bool = True) -> Image.Image:
    """Decode the item's file and apply its transforms: the final RGB image at `item.size`.

    Raises BadImageError (a ValueError) for unreadable files and ValueError when the file's size
    no longer matches the dataset record (the file was replaced after scanning).
    """
    img = load_rgb(item.path, max_pixels=max_pixels, composite_alpha=composite_alpha)
    if img.size != (item.width, item.height):
        raise ValueError(
            f"{item.path} is {img.width}x{img.height} but the dataset recorded "
            f"{item.width}x{item.height}; the file changed after loading - run LoadDataset again")
    for t in item.transforms:
        img = apply_transform(img, t)
    return img


@dataclass
class Dataset:
    """HN_DATASET: items plus where they came from and what was done to them.

    root: the folder LoadDataset scanned (absolute).
    history: one JSON-able dict per step (load options, preprocess settings), oldest first.
    """

    items: list[DatasetItem]
    root: str
    history: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> DatasetItem:
        return self.items[index]

    def group_by_size(self) -> dict[Size, list[int]]:
        """Item indices grouped by final size (= bucket), keys sorted (width, height)."""
        groups: dict[Size, list[int]] = {}
        for index, item in enumerate(self.items):
            groups.setdefault(item.size, []).append(index)
        return {key: groups[key] for key in sorted(groups)}

    def to_dict(self) -> dict[str, Any]:
        return {"format": "hn_dataset", "version": DATASET_FORMAT_VERSION, "root": self.root,
                "history": list(self.history), "items": [item.to_dict() for item in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Dataset":
        if not isinstance(data, dict) or data.get("format") != "hn_dataset":
            raise ValueError("not an HN_DATASET dict (missing format='hn_dataset'); "
                             "pass the output of Dataset.to_dict()")
        version = data.get("version")
        if version != DATASET_FORMAT_VERSION:
            raise ValueError(f"HN_DATASET version {version!r} is not supported "
                             f"(expected {DATASET_FORMAT_VERSION}); re-create the dataset")
        items = [DatasetItem.from_dict(d) for d in data.get("items", [])]
        history = data.get("history", [])
        if not isinstance(history, list):
            raise ValueError("HN_DATASET history must be a list")
        return cls(items, str(data.get("root", "")), list(history))


def centre_box(src_w: float, src_h: float, aspect: float) -> Box:
    """The largest centred box of the given aspect (w/h) inside a src_w x src_h image."""
    if src_w / src_h > aspect:
        w = src_h * aspect
        left = (src_w - w) / 2
        return (left, 0.0, left + w, float(src_h))
    h = src_w / aspect
    top = (src_h - h) / 2
    return (0.0, top, float(src_w), top + h)


def item_alpha(item: DatasetItem, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image | None:
    """The item's alpha map after its transforms (None when the file has no transparency)."""
    alpha = load_alpha(item.path, max_pixels=max_pixels)
    if alpha is None:
        return None
    if alpha.size != (item.width, item.height):
        raise ValueError(f"{item.path} is {alpha.width}x{alpha.height} but the dataset recorded "
                         f"{item.width}x{item.height}; the file changed after loading - run LoadDataset again")
    for transform in item.transforms:
        alpha = apply_transform(alpha, transform)
    return alpha
