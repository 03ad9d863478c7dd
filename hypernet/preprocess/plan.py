"""Which outputs one image yields under a PreprocessConfig, as Transforms (no file I/O).

A1111 order: split oversized, focal crop (non-square images only) and auto-sized crop are
independent tools, each adding outputs; the mode's default action (crop / fit / buckets / keep)
runs only when none of them fired. Flip adds a mirrored copy right after every output.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from ..data.dataset import Transform, centre_box, crop_transform
from .autosize import autosize_transform, choose_size
from .buckets import BucketChoice, bucket_transform, select_bucket
from .preprocess_config import PreprocessConfig
from .focal import focal_crop
from .split import split_tiles

Size = tuple[int, int]
KEEP_MULTIPLE = 8


@dataclass(frozen=True, slots=True)
class PlannedOutput:
    """kind: split | focal | auto_size | crop | fit | buckets | keep; transform None = as is."""

    kind: str
    transform: Transform | None
    flipped: bool = False


@dataclass
class ItemPlan:
    """Outputs for one image plus what the report needs to know about it."""

    outputs: list[PlannedOutput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bucket: BucketChoice | None = None


def cover_crop_transform(width: int, height: int, target: Size) -> Transform:
    """A1111's default "crop and resize": scale to cover target, centre-crop the excess."""
    return Transform(centre_box(width, height, target[0] / target[1]), target)


def fit_transform(width: int, height: int, target: Size, fill: tuple[int, int, int]) -> Transform:
    """Scale to fit inside target (aspect kept) and centre it on a target-sized canvas."""
    scale = min(target[0] / width, target[1] / height)
    fw = min(target[0], max(1, int(width * scale + 0.5)))
    fh = min(target[1], max(1, int(height * scale + 0.5)))
    offset = ((target[0] - fw) // 2, (target[1] - fh) // 2)
    return Transform((0.0, 0.0, float(width), float(height)), (fw, fh), target, offset, fill)


def keep_transform(width: int, height: int) -> Transform | None:
    """Trim to a multiple of 8 (centred) so the VAE accepts it; None when already aligned."""
    kw, kh = width - width % KEEP_MULTIPLE, height - height % KEEP_MULTIPLE
    if kw < KEEP_MULTIPLE or kh < KEEP_MULTIPLE:
        raise ValueError(f"image {width}x{height} is smaller than {KEEP_MULTIPLE} px on one side")
    if (kw, kh) == (width, height):
        return None
    return crop_transform((width - kw) // 2, (height - kh) // 2, kw, kh)


def needs_pixels(width: int, height: int, cfg: PreprocessConfig) -> bool:
    """True when planning must look at the pixels (focal crop on a non-square image)."""
    return cfg.focal_crop and width != height


def plan_outputs(width: int, height: int, cfg: PreprocessConfig, *,
                 image: Image.Image | None = None, buckets: list[Size] | None = None) -> ItemPlan:
    """Outputs for a width x height image. `image` is needed only when needs_pixels() is True."""
    target = (cfg.width, cfg.height)
    plan = ItemPlan()
    fired = False
    if cfg.split_oversized:
        tiles = split_tiles(width, height, cfg.width, cfg.height, cfg.split_threshold,
                            cfg.split_overlap)
        if tiles is not None:
            plan.outputs.extend(PlannedOutput("split", t) for t in tiles)
            fired = True
    if cfg.focal_crop and width != height:
        if image is None:
            raise ValueError("focal_crop needs the decoded image; pass image=")
        result = focal_crop(image, cfg.width, cfg.height, face_weight=cfg.face_weight,
                            entropy_weight=cfg.entropy_weight, edges_weight=cfg.edges_weight)
        plan.outputs.append(PlannedOutput("focal", Transform(result.box, target)))
        fired = True
    if cfg.auto_size:
        size = choose_size(width, height, min_dim=cfg.auto_size_min_dim,
                           max_dim=cfg.auto_size_max_dim, min_area=cfg.auto_size_min_area,
                           max_area=cfg.auto_size_max_area, objective=cfg.auto_size_objective,
                           threshold=cfg.auto_size_error_threshold)
        if size is None:
            plan.notes.append("auto_size_no_fit")
        else:
            plan.outputs.append(PlannedOutput("auto_size", autosize_transform(width, height, size)))
        fired = True  # A1111 skips the default resize even when no size fits
    if not fired:
        _default_output(width, height, cfg, plan, buckets)
    if cfg.flip:
        flipped: list[PlannedOutput] = []
        for out in plan.outputs:
            flipped.append(out)
            base = out.transform or crop_transform(0, 0, width, height)
            flipped.append(PlannedOutput(out.kind, base.with_flip(), True))
        plan.outputs = flipped
    return plan


def _default_output(width: int, height: int, cfg: PreprocessConfig, plan: ItemPlan,
                    buckets: list[Size] | None) -> None:
    target = (cfg.width, cfg.height)
    if cfg.mode == "crop":
        plan.outputs.append(PlannedOutput("crop", cover_crop_transform(width, height, target)))
    elif cfg.mode == "fit":
        plan.outputs.append(PlannedOutput("fit", fit_transform(width, height, target, cfg.pad_color)))
    elif cfg.mode == "buckets":
        choice = select_bucket(width, height, buckets or [], max_area=cfg.width * cfg.height,
                               step=cfg.bucket_step, no_upscale=cfg.no_upscale)
        plan.bucket = choice
        plan.outputs.append(PlannedOutput("buckets", bucket_transform(width, height, choice)))
    else:
        plan.outputs.append(PlannedOutput("keep", keep_transform(width, height)))
