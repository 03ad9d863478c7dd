"""The one module that touches ComfyUI internals.

Model folders, attention patches, model loading, progress, interrupt and UI events all go through
here, so that when ComfyUI's API changes only this file changes. Node modules import this module,
never `comfy`, `folder_paths` or `server` themselves.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import comfy.model_management
import comfy.utils
import folder_paths

from ..hypernet.util.names import safe_relative_name, shown
from ..hypernet.util.paths import user_folder

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


def hypernetwork_files(extensions: tuple[str, ...] = HYPERNETWORK_EXTENSIONS) -> list[str]:
    """Relative names ('sub/name.pt') of every hypernetwork file in the hypernetwork folders
    (`extensions` adds e.g. `.hns` compositions)."""
    names = set()
    for folder in model_folders(HYPERNETWORK_FOLDER):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix.lower() in extensions and path.is_file() and not path.name.startswith("."):
                names.add(path.relative_to(folder).as_posix())
    return sorted(names, key=str.lower)


def resolve_in_folders(name: str, kind: str) -> Path:
    """Absolute path of `name` inside the folders registered for `kind`.

    Refuses names that escape the folders (absolute paths, `..`); raises FileNotFoundError naming
    the folders searched when the file is not there.
    """
    try:
        safe_relative_name(name, f"{kind} file")
    except ValueError as exc:
        raise ValueError(f"{exc} (it must be a name inside the {kind} folders)") from None
    folders = model_folders(kind)
    for folder in folders:
        try:
            candidate = (folder / name).resolve()
            if candidate.is_file() and folder.resolve() in candidate.parents:
                return candidate
        except OSError as exc:  # e.g. a symlink loop: not a file we can serve
            logger.warning("%s file %s: %s", kind, shown(name), exc)
    searched = ", ".join(str(f) for f in folders) or "(none registered)"
    raise FileNotFoundError(f"{kind} file {shown(name)} was not found in: {searched}. "
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
    return user_folder(text, input_directory())


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


def is_interrupt(exc: BaseException) -> bool:
    """True for the host's cancel exception (raising it clears the flag `interrupted` reads)."""
    return isinstance(exc, comfy.model_management.InterruptProcessingException)


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


# ------------------------------------------------------------------ base checkpoint (sd_checkpoint)

HASH_CACHE_NAME = ".checkpoint_hashes.json"


def _resolve_model_file(folder_kinds: tuple[str, ...], name: str) -> Path | None:
    for kind in folder_kinds:
        try:
            path = folder_paths.get_full_path(kind, name)
        except KeyError:  # folder kind unknown to this host version
            continue
        if path:
            return Path(path)
    return None


def base_model_of_input(prompt: Any, node_id: Any, input_name: str = "model") -> Any:
    """A1111's sd_checkpoint / sd_checkpoint_name of the file the MODEL input was loaded from.

    Hashes are cached in the hypernetworks folder (HASH_CACHE_NAME), so a big file is hashed once.
    """
    from ..hypernet.graph.model_source import trace_model_loader  # the pure graph walk
    from ..hypernet.network.base_model_hash import BaseModel, HashCache, base_model_of

    traced = trace_model_loader(prompt, node_id, input_name)
    if isinstance(traced, str):
        return BaseModel(why=traced)
    class_type, _, name = traced
    path = _resolve_model_file(traced.folder_kinds, name)
    if path is None or not path.is_file():
        return BaseModel(why=f"{class_type}'s file {shown(name)} was not found in the model folders")
    cache = HashCache(default_hypernetwork_folder() / HASH_CACHE_NAME)
    try:
        return base_model_of(path, name, cache, should_stop=interrupted)
    except InterruptedError:
        raise_if_interrupted()
        raise


# ------------------------------------------------------------------ headless runs (scripts/train_run.py)


def loader_model_file(inputs: dict) -> tuple[str, Path] | None:
    """(input name, resolved path) of the model file a loader node's inputs name (ckpt_name,
    unet_name), or None when they name none. Names that escape the model folders are refused."""
    for file_input, kinds in _LOADER_FILE_INPUTS.items():
        name = inputs.get(file_input)
        if not isinstance(name, str):
            continue
        for kind in kinds:
            try:
                return file_input, resolve_in_folders(name, kind)
            except (FileNotFoundError, KeyError):
                continue
        raise FileNotFoundError(f"{file_input} {shown(name)} was not found in the "
                                f"{' or '.join(kinds)} folders; put the file there")
    return None


def load_custom_nodes(folder: Path) -> dict:
    """NODE_CLASS_MAPPINGS of the custom-node package in `folder` (imported as the host would)."""
    import importlib.util
    import sys

    init = Path(folder) / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"--custom-nodes: {folder} is not a custom-node folder (no __init__.py)")
    name = f"hn_headless_{Path(folder).resolve().name}"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return dict(getattr(module, "NODE_CLASS_MAPPINGS", {}))


def run_loader_node(class_type: str, inputs: dict, outputs: dict[str, int], extra_nodes: dict) -> tuple:
    """(MODEL, CLIP, VAE) from one loader node run as the server would (inference mode), found in
    the host's nodes or `extra_nodes`. Only nodes that output MODEL, CLIP and VAE and write nothing."""
    import torch
    import nodes as host_nodes  # the host's nodes.py: its loaders (CheckpointLoaderSimple, ...)

    cls = {**host_nodes.NODE_CLASS_MAPPINGS, **extra_nodes}.get(class_type)
    if cls is None:
        raise ValueError(f"base_model.class_type: {shown(class_type)} is not a loaded node; give its custom-node "
                         "folder with --custom-nodes")
    returns = tuple(getattr(cls, "RETURN_TYPES", ()))
    wanted = {"model": "MODEL", "clip": "CLIP", "vae": "VAE"}
    if getattr(cls, "OUTPUT_NODE", False) or any(
            not 0 <= outputs[k] < len(returns) or returns[outputs[k]] != kind for k, kind in wanted.items()):
        raise ValueError(f"base_model: {shown(class_type)} is not a loader of MODEL, CLIP and VAE at "
                         f"outputs {outputs}")
    with torch.inference_mode():
        result = getattr(cls(), cls.FUNCTION)(**inputs)
    result = result.get("result", result) if isinstance(result, dict) else result
    return tuple(result[outputs[k]] for k in ("model", "clip", "vae"))


def use_hypernetwork_folder(folder: Path) -> None:
    """Make `folder` the first hypernetworks folder, where a run writes its files."""
    folder_paths.folder_names_and_paths[HYPERNETWORK_FOLDER][0].insert(0, str(folder))


def set_console_progress(callback: Any) -> None:
    """Route the host's progress bars (bridge.Progress) to `callback(done, total)` (no server)."""
    comfy.utils.set_progress_bar_global_hook(lambda value, total, *args, **kwargs: callback(value, total))


# ------------------------------------------------------------------ upscale models (Preprocess)


def model_upscaler(upscale_model: Any, tile: int = 512, overlap: int = 32) -> Any:
    """`upscale(pil_image) -> pil_image` running the host's UPSCALE_MODEL the way its
    ImageUpscaleWithModel node does: tiled (halving the tile on out-of-memory), a progress bar of
    tiles, and Cancel checked before every tile. Works with the pinned host's chainner models and
    current ComfyUI's spandrel descriptors (both are callables with `.scale` and `.to`)."""
    import numpy as np
    import torch
    from PIL import Image

    if not callable(upscale_model) or not hasattr(upscale_model, "scale") or not hasattr(upscale_model, "to"):
        raise ValueError(f"upscale_model: expected an UPSCALE_MODEL (the output of Load Upscale Model), got "
                         f"{type(upscale_model).__name__}; connect a Load Upscale Model node, or disconnect it")
    management = comfy.model_management

    def run_tile(batch):
        raise_if_interrupted()
        return upscale_model(batch)

    def upscale(image):
        device = management.get_torch_device()
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]
        if hasattr(management, "module_size"):  # the host's own estimate (current ComfyUI)
            module = getattr(upscale_model, "model", upscale_model)
            working = (tile * tile * 3) * pixels.element_size() * max(float(upscale_model.scale), 1.0) * 384.0
            management.free_memory(management.module_size(module) + working + pixels.nelement() * 4, device)
        upscale_model.to(device)
        size = tile
        try:
            with torch.inference_mode():
                batch = pixels.movedim(-1, -3).to(device)
                while True:
                    try:
                        steps = comfy.utils.get_tiled_scale_steps(batch.shape[3], batch.shape[2], tile_x=size,
                                                                  tile_y=size, overlap=overlap)
                        bar = comfy.utils.ProgressBar(steps)
                        out = comfy.utils.tiled_scale(batch, run_tile, tile_x=size, tile_y=size, overlap=overlap,
                                                      upscale_amount=upscale_model.scale, pbar=bar)
                        break
                    except management.OOM_EXCEPTION:
                        size //= 2
                        if size < 64:
                            raise
        finally:
            upscale_model.to("cpu")
        array = torch.clamp(out.movedim(-3, -1)[0], 0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(array, "RGB")

    return upscale


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


@contextlib.contextmanager
def no_latent_previews() -> Iterator[None]:
    """Sample without the host's live latent previews (`--preview-method`). They are sent for the
    executing node, and both frontends then add an image preview of their own to it: the Train
    node shows its previews in its own widget and would grow by a second copy."""
    from comfy.cli_args import LatentPreviewMethod, args

    saved = args.preview_method
    args.preview_method = LatentPreviewMethod.NoPreviews
    try:
        yield
    finally:
        args.preview_method = saved


def decode(vae: Any, latent: dict) -> Any:
    """IMAGE tensor (B, H, W, 3) in 0..1, as VAEDecode gives."""
    return vae.decode(latent["samples"])


# ------------------------------------------------------------------ XY grid: saving images, one progress bar


def save_image_target(filename_prefix: str, width: int, height: int) -> tuple[Path, str, int, str]:
    """Where SaveImage would write its next image for `filename_prefix`: (folder, file stem, counter, subfolder).

    The prefix may name a subfolder of the output folder ('grids/xy'), never a path outside it.
    """
    text = (filename_prefix or "").strip()
    if not text or os.path.isabs(text) or ".." in Path(text).parts:
        raise ValueError(f"filename_prefix: {filename_prefix!r} is invalid; give a name such as 'xy_grid' "
                         "or 'grids/xy' inside the output folder")
    try:
        folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(
            text, folder_paths.get_output_directory(), width, height)
    except OSError as exc:  # e.g. a file where the prefix's subfolder should be
        raise ValueError(f"filename_prefix: {filename_prefix!r} cannot be used ({exc.strerror or exc}: "
                         f"{exc.filename or ''}); choose another name or subfolder") from None
    return Path(folder), stem, int(counter), subfolder


def metadata_enabled() -> bool:
    """False when the host runs with --disable-metadata (then no prompt/workflow goes into PNGs)."""
    from comfy.cli_args import args

    return not getattr(args, "disable_metadata", False)


class ProgressSpan:
    """Context: host progress bars created inside (the sampler's) fill `start..start+span` of `total`.

    So a loop of several samplings shows one bar in the UI. Every update inside also checks Cancel,
    so a cancelled prompt stops inside a sampling, not only between them. Not re-entrant.
    """

    def __init__(self, start: int, span: int, total: int):
        self.start, self.span, self.total = int(start), int(span), max(1, int(total))
        self._original = None

    def _hook(self, value, bar_total, preview=None, *args, **kwargs):
        raise_if_interrupted()
        if self._original is None:
            return None
        fraction = min(max(value / bar_total, 0.0), 1.0) if bar_total else 1.0
        return self._original(self.start + round(self.span * fraction), self.total, preview, *args, **kwargs)

    def __enter__(self) -> "ProgressSpan":
        self._original = comfy.utils.PROGRESS_BAR_HOOK
        comfy.utils.set_progress_bar_global_hook(self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        comfy.utils.set_progress_bar_global_hook(self._original)


# ------------------------------------------------------------------ training


def release_from_device(patcher: Any) -> None:
    """Tell the host's model management to unload `patcher` (moves it to its offload device)."""
    loaded = comfy.model_management.current_loaded_models
    for index in range(len(loaded) - 1, -1, -1):
        if getattr(loaded[index], "model", None) is patcher:
            loaded.pop(index).model_unload()
    comfy.model_management.soft_empty_cache()


def release_vae_from_device(vae: Any) -> None:
    """Unload a VAE's weights from the device (training keeps only the cached latents)."""
    release_from_device(vae.patcher)


def encode_latent_distribution(vae: Any, pixels: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor | None"]:
    """(mean, std) of the VAE posterior for IMAGE pixels (B, H, W, 3); std is None for VAEs
    without a Gaussian posterior (e.g. TAESD), whose single output is used as the mean.

    Unscaled latents on the CPU, as normal (non-inference) tensors.
    """
    import torch

    fsm = vae.first_stage_model
    has_posterior = all(hasattr(fsm, name) for name in ("encoder", "quant_conv"))
    with torch.inference_mode(False), torch.no_grad():
        if not has_posterior:
            return vae.encode(pixels[..., :3]).float().cpu().clone(), None
        comfy.model_management.load_models_gpu([vae.patcher])
        x = vae.process_input(pixels[..., :3].movedim(-1, 1)).to(vae.vae_dtype).to(vae.device)
        moments = fsm.quant_conv(fsm.encoder(x)).float()
        mean, logvar = torch.chunk(moments, 2, dim=1)
        std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
        return mean.cpu().clone(), std.cpu().clone()


def vae_identity(vae: Any, samples_per_tensor: int = 4096) -> str:
    """A digest of a VAE for the latent disk cache: every weight's name, dtype and shape plus an
    evenly spaced sample of its values (a fine-tuned VAE differs almost everywhere), the dtype it
    encodes in and the device type (GPU and CPU encodes differ in the last bits)."""
    import hashlib

    import torch

    digest = hashlib.sha256(f"{type(vae.first_stage_model).__name__}|{vae.vae_dtype}|"
                            f"{torch.device(vae.device).type}".encode())
    with torch.inference_mode(False), torch.no_grad():
        for name, tensor in sorted(vae.first_stage_model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            stride = max(1, flat.numel() // samples_per_tensor)
            sample = flat[::stride].to("cpu", torch.float32).contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()


def latent_cache_folder() -> Path:
    """Where the latent disk cache lives: `<ComfyUI>/user/hypernetwork_latent_cache` (safe to delete)."""
    from ..hypernet.train.latent_store import CACHE_FOLDER_NAME

    return user_directory() / CACHE_FOLDER_NAME


def encode_prompt_for_training(clip: Any, text: str, clip_skip: int = 1) -> tuple["torch.Tensor", "torch.Tensor | None"]:
    """(cond (1, tokens, width), pooled) as normal CPU tensors that can take part in backward."""
    import torch

    cond = encode_prompt(clip, text, clip_skip)[0]
    with torch.inference_mode(False):
        pooled = cond[1].get("pooled_output")
        return cond[0].float().cpu().clone(), None if pooled is None else pooled.float().cpu().clone()


def _block_norms(diffusion_model: Any) -> list:
    norms = []
    for module in diffusion_model.modules():
        if type(module).__name__ == "BasicTransformerBlock":
            norms += [getattr(module, n) for n in ("norm1", "norm2", "norm3") if hasattr(module, n)]
    return norms


def _clone_input(module: Any, args: tuple) -> tuple:
    return tuple(a.clone() if hasattr(a, "clone") and getattr(a, "requires_grad", False) else a for a in args)


def _autograd_alias(tensor: "torch.Tensor") -> "torch.Tensor":
    """A normal tensor on the same storage as `tensor` (no copy, values and memory shared).

    The host's weights are inference tensors, which autograd refuses to save for backward; an
    alias made outside inference mode is an ordinary tensor that it can save.
    """
    import torch

    with torch.inference_mode(False):
        return torch.empty(0, dtype=tensor.dtype, device=tensor.device).set_(
            tensor.untyped_storage(), tensor.storage_offset(), tensor.size(), tensor.stride())


def _aliasable(tensor: Any) -> bool:
    import torch

    return type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.layout == torch.strided


class _InPlaceWeights:
    """Context: the inference-tensor weights and buffers of `module` (and its children) swapped for
    autograd-usable aliases of the same memory while the context is open, then put back.

    The swap is only for the span of our own forward (and of a gradient-checkpoint recompute):
    autograd keeps the aliases it saved until backward, the host's module always finds its own
    tensors again. Aliases are reused while the host keeps the same tensor on the same memory.
    """

    def __init__(self, module: Any):
        self.module = module
        self._slots: list[tuple[dict, str, bool]] | None = None  # (owner's table, name, is a parameter)
        self._aliases: dict[tuple[int, str], tuple[Any, int, Any]] = {}
        self._swapped: list[tuple[dict, str, Any, Any]] = []

    def _alias_for(self, table: dict, name: str, is_param: bool, tensor: Any) -> Any:
        import torch

        key = (id(table), name)
        cached = self._aliases.get(key)
        if cached is not None and cached[0] is tensor and cached[1] == tensor.data_ptr():
            return cached[2]
        alias = _autograd_alias(tensor)
        if is_param:
            alias = torch.nn.Parameter(alias, requires_grad=False)
        self._aliases[key] = (tensor, tensor.data_ptr(), alias)
        return alias

    def __enter__(self) -> "_InPlaceWeights":
        if self._slots is None:  # every parameter and buffer slot of the tree, found once
            self._slots = [(table, name, kind == "_parameters") for owner in self.module.modules()
                           for kind in ("_parameters", "_buffers") for table in [owner.__dict__.get(kind) or {}]
                           for name in table]
        for table, name, is_param in self._slots:
            tensor = table.get(name)
            if tensor is not None and tensor.is_inference() and _aliasable(tensor):
                alias = self._alias_for(table, name, is_param, tensor)
                table[name] = alias
                self._swapped.append((table, name, tensor, alias))
        return self

    def __exit__(self, *exc_info) -> None:
        for table, name, original, alias in reversed(self._swapped):
            if table.get(name) is alias:
                table[name] = original
        self._swapped = []

    def close(self) -> None:
        self._aliases, self._slots = {}, None


def needs_model_copy(model: Any) -> bool:
    """True when some inference-tensor weight of `model` cannot be aliased (e.g. a quantized tensor
    subclass): then training falls back to a copy of the model."""
    tensors = list(model.model.parameters()) + list(model.model.buffers())
    return any(t.is_inference() and not _aliasable(t) for t in tensors)


def _hand_back(model: Any, training_patcher: Any) -> None:
    """Leave the host's model as a KSampler with `model` would: `model` loaded (the host drops our
    clone without moving or unpatching the shared weights), our clone and its patch released."""
    import torch

    try:
        with torch.inference_mode():
            comfy.model_management.load_models_gpu([model])
    except Exception:  # noqa: BLE001 -- e.g. out of memory after a failed step: unload ours instead
        logger.exception("could not hand the model back to the host; unloading the training clone")
    loaded = comfy.model_management.current_loaded_models
    if any(getattr(entry, "model", None) is training_patcher for entry in loaded):
        release_from_device(training_patcher)


class TrainingModel:
    """A MODEL made trainable for a hypernetwork, loaded through the host's model management.

    - No second copy of the model: the host's UNet is loaded as a KSampler would load it (a clone
      of the incoming ModelPatcher with the hypernetwork as attention patch, so its LoRA weight
      patches apply as in sampling). Its weights are inference tensors, which autograd cannot save
      for backward; during each forward of ours they are swapped for aliases of the same memory
      (`_InPlaceWeights`: values, memory and the host's tensors unchanged), and put back at once.
      `copy_model=True` (or a weight that cannot be aliased) deep-copies the model instead, the
      earlier way; `copy_bytes` is what that costs (0 without a copy).
    - The 2024 host adds transformer residuals in place (`x += n`), which breaks backward through
      any hypernetwork that is not in the last block. Each transformer block's norm layers get
      their input cloned (a pre-hook) while training, so the in-place add never touches a tensor
      autograd saved. The hook only acts on tensors that require grad (never in sampling); the
      current host adds out of place and the hook is then harmless.
    - Optional gradient checkpointing wraps each transformer block.
    Always `close()` it (also on error or Cancel): it removes the hooks and unloads the model.
    """

    def __init__(self, model: Any, patch: Any, gradient_checkpointing: bool = False, copy_model: bool = False):
        import copy

        import torch

        self.copied = bool(copy_model) or needs_model_copy(model)
        with torch.inference_mode(False):
            patcher = model.clone()
            if self.copied:
                patcher.backup = {}
                if hasattr(patcher, "object_patches_backup"):
                    patcher.object_patches_backup = {}
                patcher.model = copy.deepcopy(model.model)
                for param in patcher.model.parameters():
                    param.requires_grad_(False)
            patcher.set_model_attn1_patch(patch)
            patcher.set_model_attn2_patch(patch)
        # A copy must stay normal tensors when moved to the device; the host's own model loads as
        # in sampling (inference mode), so its state afterwards is what a KSampler leaves.
        with torch.inference_mode(not self.copied):
            comfy.model_management.load_models_gpu([patcher])
        self._incoming = model
        self.patcher = patcher
        self.base = patcher.model
        self.device = patcher.load_device
        self.copy_bytes = sum(p.numel() * p.element_size() for p in self.base.parameters()) if self.copied else 0
        self._weights = _InPlaceWeights(self.base)
        self._handles = [norm.register_forward_pre_hook(_clone_input) for norm in _block_norms(self.base.diffusion_model)]
        self._checkpointed = []
        if gradient_checkpointing:
            self._wrap_checkpointing()
        if self.copied:
            logger.info("training copy of %s: %.1f MB", type(self.base).__name__, self.copy_bytes / 2**20)

    def _wrap_checkpointing(self) -> None:
        import torch.utils.checkpoint

        for module in self.base.diffusion_model.modules():
            if type(module).__name__ != "BasicTransformerBlock":
                continue
            original = module.forward

            def run_block(x, *args, _original=original, _module=module, **kwargs):
                # The 2024 host adds into the block's input in place (`x += n`), and checkpoint keeps
                # that input to replay the block in backward: the block gets a copy of it. The text
                # context comes as a fresh view, so that the patch's memo (keyed on the tensor)
                # computes the same in the replay as in the forward (checkpoint checks that).
                context = kwargs.get("context")
                if context is not None and hasattr(context, "view_as"):
                    kwargs["context"] = context.view_as(context)
                with _InPlaceWeights(_module):  # the replay in backward runs outside our forward
                    return _original(x.clone(), *args, **kwargs)

            def checkpointed(*args, _run=run_block, **kwargs):
                return torch.utils.checkpoint.checkpoint(_run, *args, use_reentrant=False, **kwargs)

            module.forward = checkpointed
            self._checkpointed.append(module)

    @property
    def transformer_options(self) -> dict:
        return dict(self.patcher.model_options.get("transformer_options", {}))

    def process_latent_in(self, latent: "torch.Tensor") -> "torch.Tensor":
        return self.base.process_latent_in(latent)

    def conditioning(self, cond: "torch.Tensor", pooled: "torch.Tensor | None", width: int, height: int) -> dict:
        """Keyword tensors for apply_model (c_crossattn, and `y` for SDXL-style models)."""
        extra = self.base.extra_conds(cross_attn=cond, pooled_output=pooled, width=width, height=height,
                                      target_width=width, target_height=height, crop_w=0, crop_h=0,
                                      device=self.device)
        out = {}
        for key, value in extra.items():
            tensor = getattr(value, "cond", value)
            if hasattr(tensor, "to"):
                out[key] = tensor.to(self.device)
        out.setdefault("c_crossattn", cond.to(self.device))
        return out

    def prediction_and_target(self, x0: "torch.Tensor", conds: dict, generator: "torch.Generator | None",
                              max_timestep: int = 1000, rows: slice | None = None, *,
                              timesteps: "torch.Tensor | None" = None, noise: "torch.Tensor | None" = None,
                              noise_offset: float = 0.0, min_snr_gamma: float = 0.0) -> tuple["torch.Tensor", ...]:
        """The model's output and its target in the model's own output space (eps or v, ...).

        A uniform random timestep and Gaussian noise per sample (A1111's loss); the host's
        `model_sampling` does the noising and the output scaling, so eps, v-prediction and other
        parameterisations are all right without special cases. `rows`: the rows of the batch this
        process computes (data parallel); the draws are the whole batch's, so the ranks' rows
        together are exactly the one-process batch. `conds` are already those rows'. Given
        `timesteps` and `noise` (validation) nothing is drawn. `noise_offset` adds offset noise; with
        `min_snr_gamma` > 0 a third value comes back: the per-sample Min-SNR weight, (B, 1, 1, 1).
        """
        import torch

        from ..hypernet.train.loss_terms import min_snr_weight, offset_noise

        sampling = self.base.model_sampling
        batch = x0.shape[0]
        if timesteps is None:
            timesteps = torch.randint(0, max_timestep, (batch,), generator=generator)
        if noise is None:
            noise = offset_noise(tuple(x0.shape), generator, noise_offset)
        if rows is not None:
            timesteps, noise, x0 = timesteps[rows], noise[rows], x0[rows]
            batch = x0.shape[0]
        noise = noise.to(self.device)
        x0 = x0.to(self.device)
        sigma = sampling.sigma(timesteps.float().to(sampling.sigmas.device)).to(self.device)
        noisy = sampling.noise_scaling(sigma.view(batch, 1, 1, 1), noise, x0)
        with self._weights:
            denoised = self.base.apply_model(noisy, sigma, transformer_options=self.transformer_options, **conds)
        c_out = -sampling.calculate_denoised(sigma, torch.ones_like(x0), torch.zeros_like(x0))
        if min_snr_gamma > 0:
            weight = min_snr_weight(sigma.float(), c_out.flatten(1)[:, 0].float(), min_snr_gamma)
            return denoised.float() / c_out, x0.float() / c_out, weight.view(batch, 1, 1, 1)
        return denoised.float() / c_out, x0.float() / c_out

    def sample_preview(self, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                       positive: list, negative: list, latent: dict) -> dict:
        """A stock-KSampler sample from the training copy: the network as trained so far."""
        return sample(self.patcher, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for module in self._checkpointed:
            module.__dict__.pop("forward", None)
        self._checkpointed = []
        self._weights.close()
        if self.copied:
            release_from_device(self.patcher)
        else:
            _hand_back(self._incoming, self.patcher)
        self._incoming = None
        self.patcher = None
        self.base = None


def save_ui_image(image: Any, prefix: str) -> dict:
    """Save a PIL image into the host's temp folder (served by /view) and return the UI entry."""
    from ..hypernet.util.atomic import atomic_path

    folder = Path(folder_paths.get_temp_directory())
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in prefix) or "image"
    index = len(list(folder.glob(f"{safe}_*.png")))
    while (folder / f"{safe}_{index:05d}.png").exists():
        index += 1
    target = folder / f"{safe}_{index:05d}.png"
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return {"filename": target.name, "subfolder": "", "type": "temp"}


# ------------------------------------------------------------------ HTTP routes (the pack's small JSON API)


def add_get_route(path: str, handler: Any) -> bool:
    """Register an aiohttp GET `handler` at `path` on the running host server (see add_route)."""
    return add_route("GET", path, handler)


def add_route(method: str, path: str, handler: Any) -> bool:
    """Register an aiohttp `handler` for `method` ("GET"/"POST") at `path` on the running host server.

    Custom nodes load before the host mounts its route table, so routes added at import time are
    served. Looks the server up in sys.modules instead of importing it: without a server (tests
    that import the host in-process) nothing is registered and False is returned.
    """
    routes = getattr(_prompt_server(), "routes", None)
    if routes is None:
        return False
    # GET through `routes.get`, which also answers HEAD (as the info route always has).
    register = routes.get(path) if method.upper() == "GET" else routes.route(method, path)
    register(handler)
    return True


def _prompt_server() -> Any:
    """The host's running PromptServer, or None (tests that import the host in-process have none).
    Looked up in sys.modules instead of imported, so importing the pack never starts a server."""
    import sys

    return getattr(getattr(sys.modules.get("server"), "PromptServer", None), "instance", None)


PROMPT_PATHS = ("/prompt", "/api/prompt")


def add_prompt_check(check: Callable[[dict], dict]) -> bool:
    """Check every queued API prompt before the host validates it: `check(prompt)` returns
    host-style `node_errors` ({node id: {"errors": [...], ...}}); any -> 400 with them, as the
    host answers a prompt that fails its own validation. Needed because the host converts values
    in place while validating ("false" -> True for a BOOLEAN, "nan" -> NaN for a FLOAT), so a
    node can no longer tell what was sent. A body that is not a JSON object goes to the host."""
    from aiohttp import web

    app = getattr(_prompt_server(), "app", None)
    if app is None:
        return False

    @web.middleware
    async def hypernetwork_prompt_check(request: Any, handler: Any) -> Any:
        if request.method == "POST" and request.path in PROMPT_PATHS:
            try:
                body = await request.json()  # aiohttp keeps the body: the host's handler reads it again
            except (ValueError, RecursionError, UnicodeDecodeError):
                body = None
            prompt = body.get("prompt") if isinstance(body, dict) else None
            node_errors = check(prompt) if isinstance(prompt, dict) else {}
            if node_errors:
                error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                         "details": "; ".join(e["message"] for n in node_errors.values() for e in n["errors"])[:2000],
                         "extra_info": {}}
                return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        return await handler(request)

    app.middlewares.append(hypernetwork_prompt_check)
    return True


def user_directory() -> Path:
    """ComfyUI's user folder (settings, workflows), where the pack's user config files live."""
    getter = getattr(folder_paths, "get_user_directory", None)
    if getter is not None:
        return Path(getter())
    return Path(getattr(folder_paths, "user_directory", os.path.join(folder_paths.base_path, "user")))
