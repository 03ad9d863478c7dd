"""ONNX session for a WD14 tagger: provider choice with CPU fallback, and a per-path cache.

onnxruntime is optional: it is imported lazily, inside functions, and a missing install raises
TaggerDependencyError with the install command.
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import INSTALL_HINT, TaggerDependencyError, TaggerFilesMissingError, TaggerModelError
from .files import TaggerFiles
from .tags import TagTable, load_tag_table

logger = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
# GPU providers tried (when onnxruntime reports them) before CPU. TensorRT (slow engine builds),
# OpenVINO (fp16 gives nonsense per kohya) and Azure (remote) are left out of "auto"; they can
# still be asked for by exact name.
GPU_PROVIDERS = (
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
)

SessionFactory = Callable[[str, list[str]], Any]


def import_onnxruntime() -> Any:
    """Import onnxruntime or raise TaggerDependencyError saying how to install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise TaggerDependencyError(
            f"The WD14 tagger needs onnxruntime, which could not be imported ({exc}). {INSTALL_HINT}"
        ) from exc


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def choose_providers(available: Sequence[str], device: str = "auto") -> list[str]:
    """Provider list for a session. device: 'auto' (GPUs available, then CPU) | 'cpu' | a provider name."""
    if device == "cpu":
        return [CPU_PROVIDER]
    if device == "auto":
        return [p for p in GPU_PROVIDERS if p in available] + [CPU_PROVIDER]
    if device not in available:
        raise ValueError(
            f"device {device!r} is not an onnxruntime provider available here ({list(available)}); "
            "use 'auto', 'cpu' or one of those"
        )
    return [device] if device == CPU_PROVIDER else [device, CPU_PROVIDER]


def _default_factory(model_path: str, providers: list[str]) -> Any:
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # our own warning replaces ORT's provider-load noise
    return ort.InferenceSession(model_path, sess_options=opts, providers=providers)


def _corrupt(model_path: Path, exc: BaseException) -> TaggerModelError:
    return TaggerModelError(
        f"cannot load tagger model {model_path}: {exc}. The file is not a usable ONNX model "
        "(corrupt or incomplete download?); delete it and download model.onnx again"
    )


def create_session(
    model_path: str | os.PathLike,
    providers: Sequence[str],
    factory: SessionFactory | None = None,
) -> tuple[Any, list[str]]:
    """Create a session with `providers`; if a GPU provider fails, fall back to CPU with one warning.

    Returns (session, providers the session reports). A failure on CPU alone means the model
    itself is bad and raises TaggerModelError naming the file.
    """
    factory = factory or _default_factory
    path = Path(model_path)
    providers = list(providers)
    wants_gpu = any(p != CPU_PROVIDER for p in providers)
    try:
        session = factory(str(path), providers)
    except TaggerDependencyError:
        raise
    except Exception as gpu_exc:  # onnxruntime raises several unrelated exception types
        if not wants_gpu:
            raise _corrupt(path, gpu_exc) from gpu_exc
        try:
            session = factory(str(path), [CPU_PROVIDER])
        except TaggerDependencyError:
            raise
        except Exception as cpu_exc:
            raise _corrupt(path, cpu_exc) from cpu_exc
        logger.warning(
            "WD14 tagger: GPU provider(s) %s failed to load for %s (%s); running on CPU instead. "
            "To use the GPU install an onnxruntime-gpu that matches your CUDA (and not also onnxruntime).",
            [p for p in providers if p != CPU_PROVIDER], path.name, str(gpu_exc).splitlines()[0] if str(gpu_exc) else gpu_exc,
        )
        return session, _session_providers(session, [CPU_PROVIDER])
    used = _session_providers(session, providers)
    if wants_gpu and not any(p != CPU_PROVIDER for p in used):
        logger.warning(
            "WD14 tagger: GPU provider(s) %s were requested for %s but onnxruntime loaded only %s; "
            "running on CPU. Install a matching onnxruntime-gpu to use the GPU.",
            [p for p in providers if p != CPU_PROVIDER], path.name, used,
        )
    return session, used


def _session_providers(session: Any, fallback: list[str]) -> list[str]:
    getter = getattr(session, "get_providers", None)
    return list(getter()) if callable(getter) else list(fallback)


@dataclass
class TaggerModel:
    """A loaded tagger: session, tag table and the input geometry read from the model."""

    name: str
    files: TaggerFiles
    table: TagTable
    session: Any
    providers: list[str]
    input_name: str
    output_name: str
    input_size: int
    fixed_batch: int | None
    factory: SessionFactory | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def on_gpu(self) -> bool:
        return any(p != CPU_PROVIDER for p in self.providers)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_tags) for an NHWC float32 batch; honours a fixed model batch size.

        A GPU run failure (e.g. 'no kernel image is available') switches this model to CPU with
        one warning and retries.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n = batch.shape[0]
        if n == 0:
            return np.zeros((0, len(self.table)), dtype=np.float32)
        step = self.fixed_batch or n
        outs = []
        for start in range(0, n, step):
            chunk = batch[start:start + step]
            real = chunk.shape[0]
            if self.fixed_batch and real < self.fixed_batch:
                pad = np.repeat(chunk[-1:], self.fixed_batch - real, axis=0)
                chunk = np.concatenate([chunk, pad], axis=0)
            outs.append(self._run(chunk)[:real])
        probs = np.concatenate(outs, axis=0)
        if probs.ndim != 2 or probs.shape[1] != len(self.table):
            raise TaggerModelError(
                f"model {self.files.model_path} outputs shape {tuple(probs.shape)} but the tags CSV "
                f"{self.files.tags_path} has {len(self.table)} rows; they are not a pair — download the "
                "model's own selected_tags.csv"
            )
        return probs

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self.session.run([self.output_name], {self.input_name: chunk})[0])
        except Exception as exc:  # onnxruntime raises several unrelated exception types
            if not self.on_gpu:
                raise TaggerModelError(
                    f"tagger model {self.files.model_path} failed to run on input of shape "
                    f"{tuple(chunk.shape)}: {exc}"
                ) from exc
            logger.warning(
                "WD14 tagger: inference on %s failed (%s); switching %s to CPU.",
                self.providers[0], str(exc).splitlines()[0] if str(exc) else exc, self.name,
            )
            with self._lock:
                self.session, self.providers = create_session(
                    self.files.model_path, [CPU_PROVIDER], self.factory
                )
            return np.asarray(self.session.run([self.output_name], {self.input_name: chunk})[0])


def _static_dim(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def build_model(files: TaggerFiles, device: str = "auto", factory: SessionFactory | None = None,
                available: Sequence[str] | None = None) -> TaggerModel:
    """Load one tagger (uncached): checks both files, input layout and CSV/output sizes."""
    if not files.model_path.is_file():
        raise TaggerFilesMissingError(
            f"tagger model {files.model_path} not found; download model.onnx and save it there"
        )
    table = load_tag_table(files.tags_path)
    if factory is None:
        import_onnxruntime()
    if available is None:
        available = available_providers() if factory is None else [CPU_PROVIDER]
    providers = choose_providers(available, device)
    session, used = create_session(files.model_path, providers, factory)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if not inputs or not outputs:
        raise TaggerModelError(f"tagger model {files.model_path} has no inputs/outputs; it is not a WD14 tagger")
    shape = list(inputs[0].shape)
    h = _static_dim(shape[1]) if len(shape) == 4 else None
    w = _static_dim(shape[2]) if len(shape) == 4 else None
    if len(shape) != 4 or shape[3] != 3 or h is None or h != w:
        raise TaggerModelError(
            f"tagger model {files.model_path} has input shape {shape}; a WD14 tagger takes NHWC "
            "[batch, S, S, 3] with a fixed square size S — use a WD14 (SmilingWolf) ONNX export"
        )
    out_shape = list(outputs[0].shape)
    n_out = _static_dim(out_shape[-1]) if out_shape else None
    if n_out is not None and n_out != len(table):
        raise TaggerModelError(
            f"model {files.model_path} outputs {n_out} tags but the tags CSV {files.tags_path} has "
            f"{len(table)} rows; they are not a pair — download the model's own selected_tags.csv"
        )
    return TaggerModel(
        name=files.name, files=files, table=table, session=session, providers=used,
        input_name=inputs[0].name, output_name=outputs[0].name, input_size=h,
        fixed_batch=_static_dim(shape[0]), factory=factory,
    )


@dataclass
class _Entry:
    model: TaggerModel
    signature: tuple
    device: str


_CACHE: dict[str, _Entry] = {}
_CACHE_LOCK = threading.Lock()


def _signature(files: TaggerFiles) -> tuple:
    out = []
    for p in (files.model_path, files.tags_path):
        st = p.stat()
        out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_tagger(files: TaggerFiles, device: str = "auto", factory: SessionFactory | None = None) -> TaggerModel:
    """Cached TaggerModel for `files.model_path`; reloaded when either file changes on disk or `device` differs."""
    key = str(Path(files.model_path).resolve())
    try:
        sig = _signature(files)
    except FileNotFoundError:
        sig = ()
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and entry.signature == sig and entry.device == device:
            return entry.model
        model = build_model(files, device=device, factory=factory)
        _CACHE[key] = _Entry(model, sig, device)
        logger.info("WD14 tagger %s loaded (%s, input %d px)", files.name, model.providers, model.input_size)
        return model


def unload(name_or_path: str | os.PathLike) -> bool:
    """Drop cached sessions whose tagger name or model path matches; True if any was dropped."""
    target = str(name_or_path)
    with _CACHE_LOCK:
        keys = [
            k for k, e in _CACHE.items()
            if e.model.name == target or k == target or str(e.model.files.model_path) == target
        ]
        if not keys and isinstance(name_or_path, (str, os.PathLike)):
            try:
                resolved = str(Path(name_or_path).resolve())
            except OSError:
                resolved = ""
            keys = [k for k in _CACHE if k == resolved]
        for k in keys:
            del _CACHE[k]
    return bool(keys)


def unload_all() -> int:
    """Drop every cached session; returns how many were dropped."""
    with _CACHE_LOCK:
        n = len(_CACHE)
        _CACHE.clear()
    return n
