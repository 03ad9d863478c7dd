"""Known WD14 taggers and their download (urllib, atomic, no partial files).

Files are saved in the flat layout `<folder>/<name>.onnx` + `<folder>/<name>.csv`. Both files are
downloaded to temp files first and renamed only when both are complete, so a failure leaves
nothing behind. `HF_ENDPOINT` (env) replaces https://huggingface.co, for mirrors.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Mapping

from ..util.atomic import atomic_path
from .errors import TaggerDownloadError
from .files import HF_MODEL_FILE, HF_TAGS_FILE, TaggerFiles, validate_tagger_name

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_TAGGER = "wd-v1-4-moat-tagger-v2"

# name -> Hugging Face repo. All export model.onnx + selected_tags.csv at the repo root.
KNOWN_TAGGERS: dict[str, str] = {
    name: f"SmilingWolf/{name}"
    for name in (
        "wd-v1-4-moat-tagger-v2",
        "wd-eva02-large-tagger-v3",
        "wd-vit-large-tagger-v3",
        "wd-vit-tagger-v3",
        "wd-swinv2-tagger-v3",
        "wd-convnext-tagger-v3",
        "wd-v1-4-convnextv2-tagger-v2",
        "wd-v1-4-convnext-tagger-v2",
        "wd-v1-4-convnext-tagger",
        "wd-v1-4-vit-tagger-v2",
        "wd-v1-4-swinv2-tagger-v2",
        "wd-v1-4-vit-tagger",
    )
}

_NET_ERRORS = (OSError, urllib.error.URLError, http.client.HTTPException, socket.timeout)
DownloadProgress = Callable[[str, int, "int | None"], None]  # (file name, bytes done, total or None)
_CHUNK = 1 << 20


def hf_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def tagger_download_urls(name: str, endpoint: str | None = None) -> dict[str, str]:
    """{'model.onnx': url, 'selected_tags.csv': url} for a known tagger."""
    if name not in KNOWN_TAGGERS:
        raise ValueError(f"unknown tagger {name!r}; known taggers: {', '.join(KNOWN_TAGGERS)}")
    base = f"{hf_endpoint(endpoint)}/{KNOWN_TAGGERS[name]}/resolve/main"
    return {HF_MODEL_FILE: f"{base}/{HF_MODEL_FILE}", HF_TAGS_FILE: f"{base}/{HF_TAGS_FILE}"}


def _check_url(url: str) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"download URL must be http(s), got {url!r}")


def _fetch_to(url: str, tmp: Path, label: str, progress: DownloadProgress | None, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "comfyui-hypernetwork-tagger"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as fh:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress:
            progress(label, 0, total)
        while True:
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            fh.write(chunk)
            done += len(chunk)
            if progress:
                progress(label, done, total)
        fh.flush()
        os.fsync(fh.fileno())
    if total is not None and done != total:
        raise TaggerDownloadError(f"{url}: connection ended after {done} of {total} bytes")
    if done == 0:
        raise TaggerDownloadError(f"{url} returned an empty file")


def download_tagger(
    name: str,
    folder: str | os.PathLike,
    progress: DownloadProgress | None = None,
    endpoint: str | None = None,
    urls: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    overwrite: bool = False,
) -> TaggerFiles:
    """Download a tagger into `folder` as `<name>.onnx` + `<name>.csv`.

    `urls` ({'model.onnx': .., 'selected_tags.csv': ..}) overrides the known-tagger table. If both
    files already exist and not `overwrite`, nothing is downloaded.
    """
    validate_tagger_name(name)
    folder = Path(folder)
    files = TaggerFiles(name, folder / f"{name}.onnx", folder / f"{name}.csv")
    if not overwrite and files.model_path.is_file() and files.tags_path.is_file():
        return files
    urls = dict(urls) if urls is not None else tagger_download_urls(name, endpoint)
    missing = {HF_MODEL_FILE, HF_TAGS_FILE} - set(urls)
    if missing:
        raise ValueError(f"urls must give both {HF_MODEL_FILE} and {HF_TAGS_FILE}; missing {sorted(missing)}")
    for u in urls.values():
        _check_url(u)
    current = ""
    try:
        with contextlib.ExitStack() as stack:
            for remote, local in ((HF_TAGS_FILE, files.tags_path), (HF_MODEL_FILE, files.model_path)):
                current = urls[remote]
                tmp = stack.enter_context(atomic_path(local))
                logger.info("WD14 tagger: downloading %s -> %s", current, local)
                _fetch_to(current, tmp, remote, progress, timeout)
    except _NET_ERRORS as exc:
        page = urls[HF_MODEL_FILE].rsplit("/resolve/", 1)[0]
        raise TaggerDownloadError(
            f"downloading tagger {name!r} failed at {current}: {exc}. Nothing was saved. To install it "
            f"by hand, get {HF_MODEL_FILE} and {HF_TAGS_FILE} from {page} and save them in {folder} as "
            f"{files.model_path.name} and {files.tags_path.name} (or as {name}/{HF_MODEL_FILE} and "
            f"{name}/{HF_TAGS_FILE})"
        ) from exc
    return files
