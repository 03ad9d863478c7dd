"""The one module that touches ComfyUI internals.

Model folders, attention patches, model loading, progress, interrupt and UI events all go through
here, so that when ComfyUI's API changes only this file changes. Node modules import this module,
never `comfy`, `folder_paths` or `server` themselves.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import comfy.model_management
import comfy.utils
import folder_paths

logger = logging.getLogger(__name__)

HYPERNETWORK_FOLDER = "hypernetworks"
TAGGER_FOLDER = "wd14_tagger"
HYPERNETWORK_EXTENSIONS = (".pt", ".safetensors")
TAGGER_EXTENSIONS = (".onnx", ".csv")


# ------------------------------------------------------------------ model folders


def register_model_folders() -> None:
    """Register the `wd14_tagger` model folder (`models/wd14_tagger`) if the host lacks it.

    extra_model_paths.yaml may already have added paths under that name (with no extensions);
    the default folder and our extensions are merged in, never replacing what is there.
    """
    default = os.path.join(folder_paths.models_dir, TAGGER_FOLDER)
    entry = folder_paths.folder_names_and_paths.get(TAGGER_FOLDER)
    if entry is None:
        folder_paths.folder_names_and_paths[TAGGER_FOLDER] = ([default], set(TAGGER_EXTENSIONS))
        return
    paths, extensions = entry
    if default not in paths:
        paths.append(default)
    if isinstance(extensions, set):
        extensions.update(TAGGER_EXTENSIONS)


def model_folders(kind: str) -> list[Path]:
    """Every folder registered for `kind` (e.g. "hypernetworks", "wd14_tagger"), in host order."""
    try:
        return [Path(p) for p in folder_paths.get_folder_paths(kind)]
    except KeyError:
        return []


def hypernetwork_files() -> list[str]:
    """Relative names ('sub/name.pt') of every hypernetwork file in the hypernetwork folders."""
    names = set()
    for folder in model_folders(HYPERNETWORK_FOLDER):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix.lower() in HYPERNETWORK_EXTENSIONS and path.is_file() and not path.name.startswith("."):
                names.add(path.relative_to(folder).as_posix())
    return sorted(names, key=str.lower)


def resolve_in_folders(name: str, kind: str) -> Path:
    """Absolute path of `name` inside the folders registered for `kind`.

    Refuses names that escape the folders (absolute paths, `..`); raises FileNotFoundError naming
    the folders searched when the file is not there.
    """
    if not name or os.path.isabs(name) or ".." in Path(name).parts:
        raise ValueError(f"{kind} file {name!r} is not a name inside the {kind} folders; pick one from the list")
    folders = model_folders(kind)
    for folder in folders:
        candidate = (folder / name).resolve()
        if candidate.is_file() and folder.resolve() in candidate.parents:
            return candidate
    searched = ", ".join(str(f) for f in folders) or "(none registered)"
    raise FileNotFoundError(f"{kind} file {name!r} was not found in: {searched}. "
                            f"Put the file there or refresh the node list.")


def default_hypernetwork_folder() -> Path:
    folders = model_folders(HYPERNETWORK_FOLDER)
    if not folders:
        raise FileNotFoundError("ComfyUI has no 'hypernetworks' model folder registered")
    return folders[0]


def input_directory() -> Path:
    return Path(folder_paths.get_input_directory())


def output_directory() -> Path:
    return Path(folder_paths.get_output_directory())


def resolve_user_directory(directory: str, field: str = "directory") -> Path:
    """An absolute folder, or one relative to ComfyUI's input folder."""
    text = (directory or "").strip()
    if not text:
        raise ValueError(f"{field}: empty; give a folder path (absolute, or relative to {input_directory()})")
    path = Path(text).expanduser()
    return path if path.is_absolute() else input_directory() / path


# ------------------------------------------------------------------ models and patches


def attention_widths(model: Any) -> dict[str, tuple[int, ...]]:
    """The input widths of a MODEL's attention K projections: self (attn1) and cross (attn2)."""
    found: dict[str, set[int]] = {"self": set(), "cross": set()}
    diffusion_model = model.model.diffusion_model
    for name, module in diffusion_model.named_modules():
        to_k = getattr(module, "to_k", None)
        if to_k is None or not hasattr(to_k, "in_features"):
            continue
        if name.endswith("attn1"):
            found["self"].add(int(to_k.in_features))
        elif name.endswith("attn2"):
            found["cross"].add(int(to_k.in_features))
    return {kind: tuple(sorted(widths)) for kind, widths in found.items()}


def all_attention_widths(model: Any) -> tuple[int, ...]:
    widths = attention_widths(model)
    return tuple(sorted(set(widths["self"]) | set(widths["cross"])))


def with_attention_patch(model: Any, patch: Any) -> Any:
    """A clone of MODEL with `patch` before every self- and cross-attention K/V projection."""
    patched = model.clone()
    patched.set_model_attn1_patch(patch)
    patched.set_model_attn2_patch(patch)
    return patched


# ------------------------------------------------------------------ progress, interrupt, events


class Progress:
    """The node's progress bar in the UI (and the host's console bar)."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self._bar = comfy.utils.ProgressBar(self.total)

    def update(self, done: int, preview_image: Any = None) -> None:
        preview = ("PNG", preview_image, 512) if preview_image is not None else None
        self._bar.update_absolute(min(int(done), self.total), self.total, preview)


def interrupted() -> bool:
    """True once the user pressed Cancel (POST /interrupt); cheap enough to call every step."""
    return bool(comfy.model_management.processing_interrupted())


def raise_if_interrupted() -> None:
    """Raise the host's own interrupt exception, which it reports as a cancelled prompt."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def send_event(event: str, data: dict) -> None:
    """Send a custom websocket event (`hypernetwork.*`) to the browser; a no-op without a server."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return
    instance.send_sync(event, data, getattr(instance, "client_id", None))


def executing_node_id() -> str | None:
    """The id of the node now executing, to address UI events; None outside the server."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    instance = getattr(PromptServer, "instance", None)
    return getattr(instance, "last_node_id", None) if instance is not None else None


# ------------------------------------------------------------------ sampling (XY grid, training previews)


def sampler_names() -> list[str]:
    import comfy.samplers

    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    import comfy.samplers

    return list(comfy.samplers.KSampler.SCHEDULERS)


def encode_prompt(clip: Any, text: str, clip_skip: int = 1) -> list:
    """CONDITIONING for `text`, as CLIPSetLastLayer(-clip_skip) + CLIPTextEncode would give.

    clip_skip 1 is the last layer (A1111's default); 2 skips one layer, and so on.
    """
    if clip_skip < 1:
        raise ValueError(f"clip_skip: {clip_skip} is invalid; use 1 (last layer) or more")
    if clip_skip > 1:
        clip = clip.clone()
        clip.clip_layer(-clip_skip)
    tokens = clip.tokenize(text)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


def empty_latent(width: int, height: int, batch_size: int = 1) -> dict:
    import nodes as host_nodes

    return host_nodes.EmptyLatentImage().generate(width, height, batch_size)[0]


def sample(model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
           positive: list, negative: list, latent: dict, denoise: float = 1.0) -> dict:
    """Exactly what the stock KSampler node computes for these settings (same noise, same seed)."""
    import nodes as host_nodes

    return host_nodes.common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                      latent, denoise=denoise)[0]


def decode(vae: Any, latent: dict) -> Any:
    """IMAGE tensor (B, H, W, 3) in 0..1, as VAEDecode gives."""
    return vae.decode(latent["samples"])
