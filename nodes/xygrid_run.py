"""The XY grid's work: parse the axes, sample every cell, compose the labelled grid, save it.

Each cell is sampled exactly as a plain CLIPTextEncode -> EmptyLatentImage -> KSampler ->
VAEDecode graph with the same settings would (through `nodes.host`), so a cell can be reproduced
outside the grid. Hypernetwork files are loaded once per run, prompt encodings are cached per
(text, clip skip) and patched models per network list; the incoming model is never changed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..hypernet.grid.image import compose_grid, grid_png_info
from ..hypernet.grid.plan import CONNECTED, BaseSettings, CellSettings, axis_title, files_on_axes, plan_cells
from ..hypernet.grid.values import AxisContext, AxisValues, check_grid_size, mark_best_checkpoint, parse_axis
from ..hypernet.network.module import Hypernetwork
from ..hypernet.train.judging import VAL_LOSS_KEY
from ..hypernet.util.atomic import atomic_write_with, require_writable_folder
from . import network_files
from .host import feedback, sampling, saving
from .apply import apply_to_model

logger = logging.getLogger(__name__)

PNG_COMPRESS_LEVEL = 4  # as SaveImage


class NetworkStore:
    """Hypernetworks of one grid run by key (file name or CONNECTED), each file loaded once."""

    def __init__(self, connected: Optional[Hypernetwork] = None):
        self._networks: dict[str, Hypernetwork] = {}
        if connected is not None:
            self._networks[CONNECTED] = connected

    def get(self, name: str, axis: str = "") -> Hypernetwork:
        if name not in self._networks:
            try:
                self._networks[name] = network_files.load_by_name(name)
            except (ValueError, FileNotFoundError) as exc:
                where = f"{axis} axis (hypernetwork)" if axis else "hypernetwork axis"
                raise type(exc)(f"{where}: cannot load {name!r}: {exc}") from None
        return self._networks[name]

    def step(self, name: str) -> Optional[int]:
        """The training step stored in the file (None when it has none), for ordering globs."""
        return self.get(name).step or None

    def val_loss(self, name: str) -> Optional[float]:
        """The held-out validation loss training stored in the file (None when it has none)."""
        extra = getattr(self.get(name), "extra", None)  # a .hns composition has no training metadata
        return extra.get(VAL_LOSS_KEY) if extra else None


def parse_axes(x_type: str, x_values: str, y_type: str, y_values: str, base: BaseSettings,
               store: NetworkStore) -> tuple[AxisValues, AxisValues]:
    """Both axes parsed and validated against the host's sampler/scheduler/file lists."""
    context = AxisContext(
        samplers=sampling.sampler_names(), schedulers=sampling.scheduler_names(), prompt=base.positive,
        negative_prompt=base.negative, hypernetwork_files=network_files.choices(with_none=False, compositions=True),
        step_lookup=store.step)
    x = parse_axis(x_type, x_values, context, name="X")
    y = parse_axis(y_type, y_values, context, name="Y")
    return mark_best_checkpoint(x, store.val_loss), mark_best_checkpoint(y, store.val_loss)


def build_models(model: Any, cells: Sequence[CellSettings], store: NetworkStore) -> dict[tuple, Any]:
    """One (cloned, patched) model per distinct network list, built before any sampling so that a
    network that does not fit the model fails at once."""
    models: dict[tuple, Any] = {}
    for cell in cells:
        if cell.networks in models:
            continue
        patched = model
        for key, strength in cell.networks:
            patched = apply_to_model(patched, store.get(key), strength)
        models[cell.networks] = patched
    return models


def render_cells(model: Any, clip: Any, vae: Any, cells: Sequence[CellSettings],
                 store: NetworkStore) -> list[torch.Tensor]:
    """Sample and decode every cell (IMAGE tensors of shape (1, H, W, 3)) under one progress bar."""
    models = build_models(model, cells, store)
    encodings: dict[tuple[str, int], list] = {}

    def encode(text: str, clip_skip: int) -> list:
        key = (text, clip_skip)
        if key not in encodings:
            encodings[key] = sampling.encode_prompt(clip, text, clip_skip)
        return encodings[key]

    total = sum(cell.steps for cell in cells)
    progress = feedback.Progress(total)
    done = 0
    images = []
    for index, cell in enumerate(cells):
        feedback.raise_if_interrupted()
        positive, negative = encode(cell.positive, cell.clip_skip), encode(cell.negative, cell.clip_skip)
        latent = sampling.empty_latent(cell.width, cell.height)
        with feedback.ProgressSpan(done, cell.steps, total):
            samples = sampling.sample(models[cell.networks], cell.seed, cell.steps, cell.cfg, cell.sampler_name,
                                    cell.scheduler, positive, negative, latent)
        with feedback.ProgressSpan(done + cell.steps, 0, total):
            image = sampling.decode(vae, samples)
        images.append(image[:1].detach().to("cpu", torch.float32))
        done += cell.steps
        progress.update(done)
        logger.debug("XY grid: cell %d/%d done", index + 1, len(cells))
    return images


def to_pil(image: torch.Tensor) -> Image.Image:
    """One IMAGE (H, W, 3) or (1, H, W, 3) in 0..1 -> 8-bit RGB, rounded exactly as SaveImage does."""
    array = image.reshape(image.shape[-3:]).cpu().numpy() * 255.0
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def from_pil(image: Image.Image) -> torch.Tensor:
    """8-bit RGB -> IMAGE (1, H, W, 3) float32 in 0..1."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]


def compose(cells: Sequence[torch.Tensor], x: AxisValues, y: AxisValues) -> Image.Image:
    return compose_grid([to_pil(c) for c in cells], len(x), len(y), col_labels=x.labels, row_labels=y.labels,
                        x_title=axis_title(x), y_title=axis_title(y))


@dataclass(frozen=True)
class SavedImage:
    filename: str
    subfolder: str
    type: str = "output"

    def to_ui(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


def save_grid(grid: Image.Image, filename_prefix: str, axes: Sequence[AxisValues], settings: Mapping[str, Any],
              prompt: Any = None, extra_pnginfo: Optional[Mapping[str, Any]] = None) -> SavedImage:
    """Write the grid as `<prefix>_<counter>_.png` in the output folder (SaveImage's naming, next free
    counter, never overwriting), atomically, with the axes and settings in its `hypernet_grid` chunk
    and, unless the host disables metadata, the prompt and workflow as SaveImage writes them."""
    folder, stem, counter, subfolder = saving.save_image_target(filename_prefix, grid.width, grid.height)
    while (folder / f"{stem}_{counter:05}_.png").exists():
        counter += 1
    target = folder / f"{stem}_{counter:05}_.png"
    extra: dict[str, str] = {}
    if saving.metadata_enabled():
        if prompt is not None:
            extra["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            extra[key] = json.dumps(value)
    info = grid_png_info(axes, settings, extra_text=extra)
    atomic_write_with(target, lambda fh: grid.save(fh, format="PNG", pnginfo=info,
                                                   compress_level=PNG_COMPRESS_LEVEL))
    logger.info("XY grid saved to %s", target)
    return SavedImage(target.name, subfolder)


@dataclass(frozen=True)
class GridResult:
    grid: torch.Tensor  # (1, H, W, 3)
    cells: torch.Tensor  # (X*Y, h, w, 3), row-major
    saved: SavedImage


def run_xy_grid(model: Any, clip: Any, vae: Any, base: BaseSettings, x_type: str, x_values: str, y_type: str,
                y_values: str, filename_prefix: str, connected: Optional[Hypernetwork] = None,
                prompt: Any = None, extra_pnginfo: Optional[Mapping[str, Any]] = None) -> GridResult:
    """Everything the node does: validate all inputs first, then sample, compose and save."""
    folder, *_ = saving.save_image_target(filename_prefix, base.width, base.height)  # a bad prefix fails early
    require_writable_folder(folder, "filename_prefix")
    store = NetworkStore(connected)
    x, y = parse_axes(x_type, x_values, y_type, y_values, base, store)
    check_grid_size(len(x) * len(y), base.width, base.height)
    for name in files_on_axes(x, y):  # load every file before the first cell (errors early)
        store.get(name, x.name if name in x.values else y.name)
    cells = plan_cells(base, x, y)
    images = render_cells(model, clip, vae, cells, store)
    grid = compose(images, x, y)
    settings = dict(base.to_dict(), hypernetwork=connected.name if connected is not None else None,
                    columns=len(x), rows=len(y))
    saved = save_grid(grid, filename_prefix, (x, y), settings, prompt, extra_pnginfo)
    return GridResult(from_pil(grid), torch.cat(images, dim=0), saved)
