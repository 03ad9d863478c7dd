"""A1111's identity of the base checkpoint: short hash and model name, with a hash cache.

A1111 writes `sd_checkpoint` = the first 10 hex digits of the checkpoint file's sha256
(`checkpoint.shorthash`) and `sd_checkpoint_name` = the file name without its extension
(`checkpoint.model_name`). Hashing a 7 GB file takes a while, so hashes are cached in a JSON
file keyed by the resolved path, its size and its modification time (a changed file is re-hashed).
The cache is a file anyone can edit: an entry whose digest is not 64 lower-case hex digits is
ignored and the file hashed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..util.atomic import atomic_write_text

logger = logging.getLogger(__name__)

SHORT_HASH_LENGTH = 10
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
CACHE_VERSION = 1


@dataclass(frozen=True)
class BaseModel:
    """The checkpoint a network was trained on; `shorthash`/`name` are None when unknown (`why` says so)."""

    shorthash: str | None = None
    name: str | None = None
    why: str = ""

    @property
    def known(self) -> bool:
        return self.shorthash is not None

    def report_line(self) -> str:
        if self.known:
            return f"base model: {self.name} [{self.shorthash}] (written as sd_checkpoint / sd_checkpoint_name)"
        return f"base model unknown ({self.why}): sd_checkpoint and sd_checkpoint_name stay empty"


def sha256_file(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    """Full sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            if should_stop is not None and should_stop():
                raise InterruptedError(f"hashing {path.name} was cancelled")
            digest.update(chunk)
    return digest.hexdigest()


def is_sha256_hex(value: object) -> bool:
    """Whether `value` is a sha256 hex digest (what the cache may hand out as `sd_checkpoint`)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


class HashCache:
    """sha256 of files, remembered in `cache_file` by path + size + mtime (written atomically)."""

    def __init__(self, cache_file: Path):
        self.cache_file = Path(cache_file)

    def _load(self) -> dict:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("hash cache %s is unreadable (%s); it is rebuilt", self.cache_file, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("files"), dict):
            return {}
        return data["files"]

    def sha256(self, path: Path, should_stop: Callable[[], bool] | None = None) -> str:
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        files = self._load()
        entry = files.get(key)
        if (isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns
                and is_sha256_hex(entry.get("sha256"))):
            return entry["sha256"]
        digest = sha256_file(path, should_stop)
        files = self._load()  # another run may have added entries meanwhile
        files[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.cache_file, json.dumps({"version": CACHE_VERSION, "files": files}, indent=1))
        except OSError as exc:
            logger.warning("could not write the hash cache %s: %s", self.cache_file, exc)
        return digest


def a1111_model_name(relative_name: str) -> str:
    """A1111's `model_name`: the name inside the checkpoints folder, separators as '_', no extension."""
    return os.path.splitext(relative_name.replace("/", "_").replace("\\", "_"))[0]


def base_model_of(path: Path, relative_name: str, cache: HashCache,
                  should_stop: Callable[[], bool] | None = None) -> BaseModel:
    """A1111's `sd_checkpoint` (10-hex short sha256) and `sd_checkpoint_name` for the file at `path`.

    `relative_name` is the name the loader node shows (e.g. 'sd15/model.safetensors').
    """
    try:
        digest = cache.sha256(path, should_stop)
    except OSError as exc:
        return BaseModel(why=f"the checkpoint file {Path(path).name} could not be read: {exc}")
    return BaseModel(shorthash=digest[:SHORT_HASH_LENGTH], name=a1111_model_name(relative_name))
