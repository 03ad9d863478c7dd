"""A bounded on-disk cache of VAE latent distributions, so that a second run on the same images,
crops and VAE skips the encoder.

Each entry is one small safetensors file (`<key>.latent`) holding what every `latent_sampling`
mode needs: the posterior mean and, for VAEs that have one, its std (`once` draws its seeded
sample from them; `deterministic` uses the mean; `random` samples at every step). The key is a
digest of the image file's bytes, the item's transforms (crops, resizes, pads, flips) and final
size, and the VAE's identity (a digest of its weights, dtype and device type), so any change to
one of them is a miss, never a wrong latent. Files are written atomically and read with
safetensors (no pickle); an unreadable or mis-shaped file counts as a miss. The folder is
bounded: after a run, the least recently used entries are deleted until it is under its limit.
Deleting the folder (or any file in it) at any time is safe.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..data.dataset import DatasetItem
from ..util.atomic import atomic_write_bytes, is_temp_name

logger = logging.getLogger(__name__)

CACHE_FOLDER_NAME = "hypernetwork_latent_cache"
SUFFIX = ".latent"
FORMAT_VERSION = 1
DEFAULT_LIMIT_BYTES = 4 * 2**30
_READ_CHUNK = 1 << 20

LatentPair = tuple[torch.Tensor, "torch.Tensor | None"]


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def item_key(item: DatasetItem, size: tuple[int, int], vae_identity: str, composite_alpha: bool = True) -> str:
    """The cache key of one item's latent: image bytes, transforms, encoded size, VAE, and whether
    transparent pixels were composited on white (alpha_loss_weight keeps their colours)."""
    recipe = {"version": FORMAT_VERSION, "image": file_digest(item.path), "vae": vae_identity,
              "composite_alpha": composite_alpha,
              "transforms": [t.to_dict() for t in item.transforms], "size": list(size)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass
class StoreStats:
    hits: int = 0
    misses: int = 0
    unreadable: int = 0
    pruned: int = 0


class LatentStore:
    """The cache folder; `get` and `put` latent distributions by key, `prune` to the size limit."""

    def __init__(self, folder: Path, limit_bytes: int = DEFAULT_LIMIT_BYTES):
        if limit_bytes < 0:
            raise ValueError(f"latent cache limit: {limit_bytes} is invalid; use a size in bytes >= 0")
        self.folder = Path(folder)
        self.limit_bytes = limit_bytes
        self.stats = StoreStats()

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"latent cache key {key!r} is not a sha256 digest")
        return self.folder / f"{key}{SUFFIX}"

    def get(self, key: str) -> LatentPair | None:
        """The cached (mean, std) for `key` when it is there and readable as one latent."""
        path = self._path(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            logger.warning("latent cache: %s unreadable (%s); encoding again", path.name, exc)
            self.stats.unreadable += 1
            return None
        mean, std = tensors.get("mean"), tensors.get("std")
        if (mean is None or mean.dim() != 4 or mean.shape[0] != 1 or not torch.isfinite(mean).all()
                or (std is not None and std.shape != mean.shape) or set(tensors) - {"mean", "std"}):
            logger.warning("latent cache: %s does not hold a latent of this image; encoding again", path.name)
            self.stats.unreadable += 1
            return None
        try:
            os.utime(path)  # least recently used goes first when pruning
        except OSError:
            pass
        self.stats.hits += 1
        return mean.float(), None if std is None else std.float()

    def put(self, key: str, pair: LatentPair) -> None:
        mean, std = pair
        tensors = {"mean": mean.detach().float().contiguous().cpu()}
        if std is not None:
            tensors["std"] = std.detach().float().contiguous().cpu()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self._path(key), save(tensors))
        except OSError as exc:  # a full disk or read-only folder must not stop training
            logger.warning("latent cache: cannot write %s (%s); training goes on without caching it", key, exc)

    def entries(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir()
                if p.name.endswith(SUFFIX) and not is_temp_name(p.name) and p.is_file() and not p.is_symlink()]

    def prune(self, keep: Iterable[str] = ()) -> None:
        """Delete least recently used entries (never those in `keep`) until under the limit."""
        kept = {f"{k}{SUFFIX}" for k in keep}
        files = []
        for path in self.entries():
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.limit_bytes:
                break
            if path.name in kept:
                continue
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            self.stats.pruned += 1

    def report_line(self) -> str:
        s = self.stats
        line = f"latent disk cache ({self.folder}): {s.hits} reused, {s.misses + s.unreadable} encoded"
        return line + (f", {s.pruned} old entries removed" if s.pruned else "")
