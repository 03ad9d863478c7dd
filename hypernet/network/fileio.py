"""Read and write hypernetwork files: A1111 `.pt`, this pack's `.safetensors`, the `.optim` sidecar.

`.pt`  : `torch.save` of A1111's plain dict `{width: (K state, V state), metadata...}`; readable by
         A1111, stock ComfyUI and this pack. Loaded with `weights_only=True` only.
`.safetensors`: flat tensors `"<width>.<0|1>.<module key>"` plus the metadata as JSON in the
         header (`__metadata__["hypernetwork"]`); readable by this pack only.
`.optim`: `<file>.optim` = {'optimizer_name', 'hash' (first 10 hex of the sha256 of the model file),
         'optimizer_state_dict'}, as A1111 writes it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..util.atomic import atomic_path, atomic_write_with
from .activations import normalize_activation_name
from .hypernetwork_config import MAX_WIDTH, WEIGHT_INITIALIZATIONS, HypernetworkConfig, derive_dropout_structure
from .module import METADATA_KEYS, Hypernetwork, check_extra_metadata

logger = logging.getLogger(__name__)

SAFETENSORS_METADATA_KEY = "hypernetwork"
OPTIM_SUFFIX = ".optim"
_LEGACY_RENAMES = {
    "linear1.weight": "linear.0.weight", "linear1.bias": "linear.0.bias",
    "linear2.weight": "linear.1.weight", "linear2.bias": "linear.1.bias",
}
_FLAT_KEY = re.compile(r"^(\d+)\.([01])\.(.+)$")
_MONKEYPATCH_KEY = re.compile(r"^linear\.\d+\.(linear\.\d+\.|upsample_layer\.)")


# ---------------------------------------------------------------------------------------------
# safe torch loading
# ---------------------------------------------------------------------------------------------
def _require_file(path: Path, what: str = "hypernetwork file") -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")


def _pickle_detail(exc: Exception) -> str:
    """The line of torch's weights_only error that names the refused global, if any."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "global" in line.lower() and ("unsupported" in line.lower() or "not allowed" in line.lower()):
            return line
    return lines[0] if lines else type(exc).__name__


def safe_torch_load(path: str | os.PathLike) -> Any:
    """`torch.load(path, map_location="cpu", weights_only=True)` with readable errors.

    A file holding pickled code (anything but plain containers and tensors) is refused without
    running it; truncated/corrupt files raise ValueError naming the file.
    """
    path = Path(path)
    _require_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise ValueError(
                f"{path}: refused to load: the file contains pickled Python objects other than plain "
                f"data and tensors (such a file can run code when opened). Only plain hypernetwork "
                f"dicts are read; re-save it with A1111 or get it from a trusted source. "
                f"Detail: {_pickle_detail(exc)}"
            ) from None
        raise ValueError(f"{path}: the file is truncated or corrupt ({exc}); re-download or re-save it") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(
            f"{path}: cannot read the file as a torch checkpoint; it is truncated, corrupt or not a "
            f".pt file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"re-download or re-save it"
        ) from None


# ---------------------------------------------------------------------------------------------
# A1111 dict -> Hypernetwork
# ---------------------------------------------------------------------------------------------
def _meta_bool(data: Mapping, key: str, default: bool, source: str) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{source}: metadata {key}={value!r} is invalid; must be true or false")


def _meta_number_list(data: Mapping, key: str, default: Any, source: str) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value]
    raise ValueError(f"{source}: metadata {key}={value!r} is invalid; must be a list of numbers")


def _meta_text(data: Mapping, key: str, source: str) -> str | None:
    """Informational text fields: tolerate odd types (warn, stringify) rather than refuse the file."""
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    logger.warning("%s: metadata %s=%r is not text; stored as %r", source, key, value, str(value))
    return str(value)


def _reject_monkeypatch(data: Mapping, widths: list[int], source: str) -> None:
    keys = [k for w in widths for sd in _as_pair(data[w], w, source) for k in sd]
    odd = [k for k in keys if _MONKEYPATCH_KEY.match(str(k))]
    if data.get("skip_connection") or odd:
        shown = odd[:3] or ["skip_connection=True"]
        raise ValueError(
            f"{source}: this is a Hypernetwork-MonkeyPatch 'skip connection' (ResBlock) network "
            f"({', '.join(map(str, shown))}); its layers differ from A1111's, so neither this pack, "
            f"stock A1111 nor stock ComfyUI can run it. Use it in A1111 with the MonkeyPatch "
            f"extension, or create it again without skip connections"
        )


def _as_pair(entry: Any, width: int, source: str) -> tuple[Mapping, Mapping]:
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(isinstance(e, Mapping) for e in entry):
        raise ValueError(
            f"{source}: entry {width} must be a pair (K state dict, V state dict), got "
            f"{type(entry).__name__}{'' if not hasattr(entry, '__len__') else f' of length {len(entry)}'}"
        )
    return entry[0], entry[1]


def _fix_legacy(state: Mapping[str, Any]) -> dict[str, Any]:
    """Old NovelAI-era modules used `linear1/linear2`; A1111 renames them to `linear.0/linear.1`."""
    return {_LEGACY_RENAMES.get(k, k): v for k, v in state.items()}


def hypernetwork_from_a1111_dict(data: Any, source: str) -> Hypernetwork:
    """Validate an A1111-format dict and build the Hypernetwork; defaults follow A1111's loader.

    Absent keys: layer_structure [1,2,1], activation none, no layer norm, activate_output **True**,
    dropout_structure derived (A1111's rule); `use_dropout` forced True when dropout_structure has a
    non-zero entry. Unknown top-level string keys are kept in `Hypernetwork.extra`.
    Every problem raises ValueError naming `source` and what is wrong.
    """
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{source}: not a hypernetwork file: the top level is a {type(data).__name__}, "
            f"expected A1111's dict of attention widths and metadata"
        )
    widths = [k for k in data if type(k) is int]  # A1111 recognises widths by type only
    if not widths:
        shown = sorted(str(k) for k in data)[:8]
        raise ValueError(
            f"{source}: not a hypernetwork file: no attention-width entries (integer keys such as "
            f"768 or 320) found; top-level keys are {shown}. Is it a LoRA, an embedding or a checkpoint?"
        )
    bad = [w for w in widths if not 0 < w <= MAX_WIDTH]
    if bad:
        raise ValueError(f"{source}: attention widths {bad[:5]} are invalid; widths must be in 1..{MAX_WIDTH}")
    _reject_monkeypatch(data, widths, source)

    states = {w: tuple(_fix_legacy(sd) for sd in _as_pair(data[w], w, source)) for w in widths}

    layer_structure = _meta_number_list(data, "layer_structure", [1.0, 2.0, 1.0], source)
    try:
        activation = normalize_activation_name(data.get("activation_func"))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    is_layer_norm = _meta_bool(data, "is_layer_norm", False, source)
    activate_output = _meta_bool(data, "activate_output", True, source)
    last_layer_dropout = _meta_bool(data, "last_layer_dropout", False, source)
    dropout = _meta_number_list(data, "dropout_structure", None, source)
    notes: list[str] = []
    if dropout is not None and isinstance(layer_structure, list):
        dropout = _dropout_as_a1111_uses_it(list(dropout), layer_structure, notes)
    use_dropout = True if dropout is not None and any(dropout) else _meta_bool(data, "use_dropout", False, source)
    if dropout is None:
        dropout = derive_dropout_structure(layer_structure, use_dropout, last_layer_dropout)
    for note in notes:
        logger.warning("%s: %s", source, note)

    weight_init = data.get("weight_initialization") or "Normal"
    if not isinstance(weight_init, str) or weight_init.strip().lower() not in {
        w.lower() for w in WEIGHT_INITIALIZATIONS
    }:
        logger.warning("%s: unknown weight_initialization %r (informational only); using 'Normal'",
                       source, weight_init)
        weight_init = "Normal"

    name = _meta_text(data, "name", source)
    if not name or not name.strip():
        name = Path(source).stem or "hypernetwork"

    step = data.get("step", 0)
    if step is None:
        step = 0
    if isinstance(step, torch.Tensor) and step.numel() == 1:
        step = step.item()
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"{source}: metadata step={step!r} is invalid; must be a whole number >= 0")

    extra: dict[str, Any] = {}
    known = set(METADATA_KEYS)
    for key, value in data.items():
        if type(key) is int or key in known:
            continue
        if not isinstance(key, str):
            logger.warning("%s: ignoring top-level key %r (neither a width nor a metadata name)", source, key)
            continue
        try:
            int(key)
        except ValueError:
            pass
        else:
            logger.warning("%s: ignoring top-level key %r (reads as a number)", source, key)
            continue
        if isinstance(value, (type(None), bool, int, float, str, list, tuple, dict)):
            extra[key] = value
        else:
            logger.warning("%s: ignoring extra key %r with %s value", source, key, type(value).__name__)

    try:
        config = HypernetworkConfig(
            name=name,
            layer_structure=layer_structure,
            activation_func=activation,
            is_layer_norm=is_layer_norm,
            weight_initialization=weight_init,
            use_dropout=use_dropout,
            dropout_structure=dropout,
            activate_output=activate_output,
            last_layer_dropout=bool(len(dropout) >= 2 and dropout[-2] != 0),
            sizes=widths,
            optional_info=_meta_text(data, "optional_info", source),
        )
    except ValueError as exc:
        raise ValueError(f"{source}: invalid metadata: {exc}") from None
    try:
        extra_ok = _plain_extra(extra, source)
        network = Hypernetwork.from_layer_states(
            config, states, step=step,
            sd_checkpoint=_meta_text(data, "sd_checkpoint", source),
            sd_checkpoint_name=_meta_text(data, "sd_checkpoint_name", source),
            extra=extra_ok,
        )
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    network.load_notes = tuple(notes)
    return network


def _dropout_as_a1111_uses_it(dropout: list, layer_structure: list, notes: list[str]) -> list:
    """The entries of `dropout_structure` A1111 builds layers from, with a note per change.

    A1111 reads entry i+1 after linear i, so only the first len(layer_structure) entries count
    (its create tab never checked the length: `1, 2, 1` with `0, 0.1, 0, 0` loads there); entry 0
    is never used; a non-zero last entry adds a Dropout after the output layer, which does nothing
    at inference (same images) and is left out here.
    """
    n = len(layer_structure)
    if len(dropout) > n:
        notes.append(f"dropout_structure {dropout} is longer than layer_structure {layer_structure}; as in "
                     f"A1111, only its first {n} entries are used, {dropout[n:]} ignored")
        dropout = dropout[:n]
    if len(dropout) == n and n >= 2 and (dropout[0] != 0 or dropout[-1] != 0):
        notes.append(f"dropout_structure {dropout}: the non-zero first/last entry is not used here (the first "
                     f"never is; the last is dropout after the output layer, off at inference, so images "
                     f"are unchanged), so 0 there")
        dropout = [0.0] + list(dropout[1:-1]) + [0.0]
    return dropout


def _plain_extra(extra: dict[str, Any], source: str) -> dict[str, Any]:
    """Keep only extras that can be written back (JSON-like); warn about the rest."""
    kept = {}
    for key, value in extra.items():
        try:
            kept.update(check_extra_metadata({key: value}))
        except ValueError as exc:
            logger.warning("%s: ignoring extra key %r: %s", source, key, exc)
    return kept


# ---------------------------------------------------------------------------------------------
# .pt
# ---------------------------------------------------------------------------------------------
def load_pt(path: str | os.PathLike) -> Hypernetwork:
    """Load an A1111 `.pt` hypernetwork safely (weights_only); returns it in eval mode on CPU."""
    path = Path(path)
    return hypernetwork_from_a1111_dict(safe_torch_load(path), str(path))


def save_pt(hn: Hypernetwork, path: str | os.PathLike, *, stock_safe_dropout: bool = True) -> Path:
    """Write `hn` as an A1111 `.pt` atomically (see `Hypernetwork.to_a1111_dict`)."""
    data = hn.to_a1111_dict(stock_safe_dropout=stock_safe_dropout)
    return atomic_write_with(path, lambda fh: torch.save(data, fh))


# ---------------------------------------------------------------------------------------------
# .safetensors (this pack only)
# ---------------------------------------------------------------------------------------------
def save_safetensors(hn: Hypernetwork, path: str | os.PathLike) -> Path:
    """Write flat tensors `<width>.<0|1>.<key>` + JSON metadata; readable by this pack only."""
    from safetensors.torch import save_file

    data = hn.to_a1111_dict(stock_safe_dropout=False)
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for key, value in data.items():
        if type(key) is int:
            for index, state in enumerate(value):
                for name, tensor in state.items():
                    tensors[f"{key}.{index}.{name}"] = tensor
        else:
            meta[key] = value
    meta["sizes"] = list(hn.widths)
    header = {"format": "pt", SAFETENSORS_METADATA_KEY: json.dumps(meta)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def load_safetensors(path: str | os.PathLike) -> Hypernetwork:
    """Load a `.safetensors` written by `save_safetensors` (no code can run from this format)."""
    from safetensors import safe_open

    path = Path(path)
    _require_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types; report them uniformly
        raise ValueError(
            f"{path}: cannot read the file as safetensors; it is truncated or corrupt "
            f"({type(exc).__name__}: {exc}); re-download or re-save it"
        ) from None

    data: dict[Any, Any] = {}
    if SAFETENSORS_METADATA_KEY in header:
        try:
            meta = json.loads(header[SAFETENSORS_METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: the '{SAFETENSORS_METADATA_KEY}' metadata is not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError(f"{path}: the '{SAFETENSORS_METADATA_KEY}' metadata is nested too deeply to be "
                             "hypernetwork metadata; re-save the file with this pack") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: the '{SAFETENSORS_METADATA_KEY}' metadata must be a JSON object")
    else:
        meta = {}
    order = meta.pop("sizes", None)
    if order is not None and (not isinstance(order, list)
                              or not all(type(w) is int and w > 0 for w in order)):
        raise ValueError(f"{path}: metadata sizes={str(order)[:80]!r} is invalid; must be a list of attention "
                         "widths such as [768, 320]; re-save the file with this pack")

    groups: dict[int, tuple[dict, dict]] = {}
    stray = []
    for key, tensor in tensors.items():
        match = _FLAT_KEY.match(key)
        if not match:
            stray.append(key)
            continue
        width, index, name = int(match.group(1)), int(match.group(2)), match.group(3)
        groups.setdefault(width, ({}, {}))[index][name] = tensor
    if stray or not groups:
        raise ValueError(
            f"{path}: not a hypernetwork safetensors file: expected tensor names like "
            f"'768.0.linear.0.weight', found {sorted(stray)[:5] or 'no tensors'}. "
            f"(LoRA and checkpoint files go in their own folders)"
        )
    if not meta:
        logger.warning("%s: no hypernetwork metadata in the header; using A1111 defaults", path)
    widths = [w for w in (order or []) if w in groups] + sorted(w for w in groups if w not in (order or []))
    for width in widths:
        data[width] = groups[width]
    data.update(meta)
    return hypernetwork_from_a1111_dict(data, str(path))


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------
def load_hypernetwork(path: str | os.PathLike) -> Hypernetwork:
    """Load `.safetensors` with `load_safetensors`, anything else as an A1111 `.pt`."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        return load_safetensors(path)
    return load_pt(path)


def save_hypernetwork(hn: Hypernetwork, path: str | os.PathLike) -> Path:
    """Save by suffix: `.safetensors` -> `save_safetensors`, anything else -> `save_pt`."""
    if Path(path).suffix.lower() == ".safetensors":
        return save_safetensors(hn, path)
    return save_pt(hn, path)


# ---------------------------------------------------------------------------------------------
# .optim sidecar
# ---------------------------------------------------------------------------------------------
def short_hash(path: str | os.PathLike) -> str:
    """First 10 hex digits of the file's sha256 (A1111's short hash)."""
    path = Path(path)
    _require_file(path, "file to hash")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


def optim_path(model_path: str | os.PathLike) -> Path:
    """`name.pt` -> `name.pt.optim`."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + OPTIM_SUFFIX)


def save_optimizer_state(
    model_path: str | os.PathLike, optimizer_name: str, optimizer_state_dict: Mapping[str, Any],
    model_hash: str | None = None,
) -> Path:
    """Write `<model_path>.optim` bound to the model file's current bytes (call after saving it);
    `model_hash`: the file's short_hash when the caller has just taken it (else it is taken here)."""
    if not isinstance(optimizer_name, str) or not optimizer_name:
        raise ValueError(f"optimizer_name: {optimizer_name!r} is invalid; give the torch.optim class name")
    payload = {
        "optimizer_name": optimizer_name,
        "hash": model_hash or short_hash(model_path),
        "optimizer_state_dict": optimizer_state_dict,
    }
    return atomic_write_with(optim_path(model_path), lambda fh: torch.save(payload, fh))


@dataclass(frozen=True)
class OptimizerStateResult:
    """Outcome of looking for a resumable optimizer state; `reason` says why when there is none."""

    path: Path
    state_dict: dict[str, Any] | None
    optimizer_name: str | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.state_dict is not None


def load_optimizer_state(model_path: str | os.PathLike) -> OptimizerStateResult:
    """Read `<model_path>.optim`; the state is returned only when its hash matches the model file.

    Never raises for sidecar problems (missing, stale, unreadable): the result carries a reason
    the caller should show, and training continues with a fresh optimizer.
    Raises FileNotFoundError when the model file itself is missing.
    """
    model_path = Path(model_path)
    sidecar = optim_path(model_path)
    current = short_hash(model_path)

    def fail(reason: str) -> OptimizerStateResult:
        return OptimizerStateResult(sidecar, None, None, reason)

    if not sidecar.is_file():
        return fail(f"no optimizer state: {sidecar.name} does not exist; starting a fresh optimizer")
    try:
        payload = safe_torch_load(sidecar)
    except ValueError as exc:
        return fail(f"optimizer state unreadable, starting a fresh optimizer: {exc}")
    if not isinstance(payload, Mapping) or not {"hash", "optimizer_state_dict"} <= set(payload):
        return fail(f"{sidecar}: not an optimizer sidecar (needs 'hash' and 'optimizer_state_dict'); "
                    f"starting a fresh optimizer")
    if payload["hash"] != current:
        return fail(
            f"{sidecar.name} belongs to a different version of {model_path.name} (saved for hash "
            f"{payload['hash']!r}, file is now {current!r}); starting a fresh optimizer"
        )
    state = payload["optimizer_state_dict"]
    if not isinstance(state, Mapping):
        return fail(f"{sidecar}: optimizer_state_dict is not a dict; starting a fresh optimizer")
    name = payload.get("optimizer_name") or "AdamW"
    return OptimizerStateResult(sidecar, dict(state), str(name), "")
