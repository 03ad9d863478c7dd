"""The one rule for a caption file extension (LoadDataset, the WD14 tagger, the dataset editor's
routes and its restore points all call `validate_caption_extension`).

A caption extension names a text file next to each image (`<stem><ext>`). It must be a dot and
a short name of letters, digits, '_' or '-' (several parts allowed: `.tags.txt`), and its last
part must not be a format the pack reads as data: an image extension (LoadDataset's own and every
format PIL opens), a network or model file, or the JSON files the pack keeps. So a typo such as
`.png` can never make a caption write land on an image.
"""
from __future__ import annotations

import re

from PIL import Image

from .images import SUPPORTED_EXTENSIONS

MAX_LENGTH = 16
DEFAULT = ".txt"
_SHAPE = re.compile(r"^(\.[A-Za-z0-9_-]+)+$")
#: Files the pack reads that are not images: networks, optimizer state, checkpoints, tagger
#: models and tables, and its own JSON state (sidecars, restore points, manifests).
_PACK_FORMATS = frozenset({".pt", ".pth", ".optim", ".safetensors", ".ckpt", ".bin", ".onnx", ".hns",
                           ".csv", ".json"})


def _image_formats() -> frozenset[str]:
    return frozenset(ext.lower() for ext in Image.registered_extensions()) | SUPPORTED_EXTENSIONS


#: Last parts a caption extension may not have (lower case, with the dot).
REFUSED_SUFFIXES: frozenset[str] = _image_formats() | _PACK_FORMATS


def caption_extension_problem(ext: object) -> str | None:
    """Why `ext` cannot be a caption extension, or None when it can."""
    if not isinstance(ext, str):
        return f"expected text like '.txt', got {type(ext).__name__} {ext!r}"
    if len(ext) > MAX_LENGTH or not _SHAPE.fullmatch(ext):
        return (f"{ext!r} must be a dot and a short name of letters, digits, '_' or '-' "
                f"(at most {MAX_LENGTH} characters), like '.txt' or '.caption'")
    suffix = "." + ext.rsplit(".", 1)[1].lower()
    if suffix in SUPPORTED_EXTENSIONS or suffix in REFUSED_SUFFIXES - _PACK_FORMATS:
        return f"{ext!r} is an image format; caption files would replace images. Use '.txt' or '.caption'"
    if suffix in _PACK_FORMATS:
        return f"{ext!r} is a format the pack reads as data, not caption text. Use '.txt' or '.caption'"
    return None


def validate_caption_extension(ext: object, field: str = "caption_extension") -> str:
    """`ext` when it is a valid caption extension; ValueError naming `field` and the fix otherwise."""
    problem = caption_extension_problem(ext)
    if problem is not None:
        raise ValueError(f"{field}: {problem}")
    return ext  # type: ignore[return-value]
