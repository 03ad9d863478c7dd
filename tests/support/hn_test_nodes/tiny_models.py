"""Tiny SD-architecture models built in code with the host's own classes (no weight downloaded).

Only importable where ComfyUI is importable (the server process, or a test that put the host on
sys.path). Every build is deterministic from its seed: the host leaves layer weights
uninitialised (`torch.empty`), so every parameter is filled from a seeded generator here.

Kinds:
- `sd1`: SD1 UNet (model_channels 32, channel_mult [1, 2], one res block per level, transformer
  depth 1, context 768, eps prediction), tiny SD1 CLIP-L (3 layers, width 768, the real bundled
  tokenizer), TAESD-shaped VAE. Attention widths: 32, 64 (self) and 768 (cross).
- `sd2v`: the same UNet shape with context 1024, linear transformer projections and
  v-prediction; tiny CLIP-H (width 1024).
- `sdxl`: context 2048, `adm` conditioning (pooled 1280 + size embeddings), tiny CLIP-L + CLIP-G.
"""
from __future__ import annotations

import inspect
import json
import math
import threading
from pathlib import Path

import torch

import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.sdxl_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd

try:  # current ComfyUI keeps the SD2 text encoder with the other text encoders
    from comfy.text_encoders import sd2_clip as _sd2_clip
except ImportError:  # the pinned early-2024 host
    import comfy.sd2_clip as _sd2_clip

CONFIG_DIR = Path(__file__).resolve().parent / "tiny_configs"
KINDS = ("sd1", "sd2v", "sdxl")

_BASE_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "num_res_blocks": [1, 1],
    "channel_mult": [1, 2],
    "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1],
    "transformer_depth_middle": 1,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}


def unet_config(kind: str) -> dict:
    cfg = dict(_BASE_UNET)
    if kind == "sd1":
        cfg.update(context_dim=768, use_linear_in_transformer=False, adm_in_channels=None)
    elif kind == "sd2v":
        cfg.update(context_dim=1024, use_linear_in_transformer=True, adm_in_channels=None)
    elif kind == "sdxl":
        cfg.update(context_dim=2048, use_linear_in_transformer=True, adm_in_channels=2816,
                   num_classes="sequential")
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {KINDS}")
    return cfg


# ------------------------------------------------------------------ model configs the host can detect


class TinySD15(comfy.supported_models.SD15):
    unet_config = {"context_dim": 768, "model_channels": 32, "use_linear_in_transformer": False,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": 8, "num_head_channels": -1}


class TinySD2V(comfy.supported_models.SD20):
    unet_config = {"context_dim": 1024, "model_channels": 32, "use_linear_in_transformer": True,
                   "adm_in_channels": None, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16}

    def model_type(self, state_dict, prefix=""):
        return comfy.model_base.ModelType.V_PREDICTION


class TinySDXL(comfy.supported_models.SDXL):
    unet_config = {"context_dim": 2048, "model_channels": 32, "use_linear_in_transformer": True,
                   "adm_in_channels": 2816, "use_temporal_attention": False}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16}


MODEL_CONFIGS = {"sd1": TinySD15, "sd2v": TinySD2V, "sdxl": TinySDXL}


def register_tiny_configs() -> None:
    """Let the stock checkpoint loader detect tiny UNets (idempotent)."""
    for cls in MODEL_CONFIGS.values():
        if cls not in comfy.supported_models.models:
            comfy.supported_models.models.insert(0, cls)


# ------------------------------------------------------------------ deterministic initialisation


@torch.no_grad()
def init_module(module: torch.nn.Module, seed: int) -> None:
    """Fill every parameter from a seeded generator: fan-in scaled normals for weights, unit scale
    and zero shift for normalisation layers, zero biases (so activations keep a sane scale)."""
    norm_params = set()
    for sub in module.modules():
        if isinstance(sub, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            norm_params.update(id(p) for p in sub.parameters(recurse=False))
    gen = torch.Generator().manual_seed(seed)
    for name, param in sorted(module.named_parameters(), key=lambda item: item[0]):
        if id(param) in norm_params:
            values = torch.ones(param.shape) if name.endswith("weight") else torch.zeros(param.shape)
        elif param.ndim >= 2:
            fan_in = param[0].numel()
            std = 0.02 if "embedding" in name else 1.0 / math.sqrt(fan_in)
            values = torch.randn(param.shape, generator=gen) * std
        elif name.endswith("bias"):
            values = torch.zeros(param.shape)
        elif name.endswith("vae_scale"):
            values = torch.ones(param.shape)
        elif name.endswith("vae_shift"):  # current hosts' TAESD only
            values = torch.zeros(param.shape)
        else:
            values = torch.randn(param.shape, generator=gen) * 0.02
        param.copy_(values.to(param.dtype))


# ------------------------------------------------------------------ builders


def build_unet(kind: str, seed: int = 0) -> comfy.model_patcher.ModelPatcher:
    model_config = MODEL_CONFIGS[kind](unet_config(kind))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, "", device=torch.device("cpu"))
    init_module(model, seed)
    model.eval()
    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )


def build_vae(seed: int = 0) -> comfy.sd.VAE:
    taesd = comfy.taesd.taesd.TAESD()
    init_module(taesd, seed + 1)
    return comfy.sd.VAE(sd=taesd.state_dict())


def _clip_json(name: str) -> str:
    return str(CONFIG_DIR / f"{name}.json")


# Pinned-host text models (used by _build_clip_pinned only).
class _TinyClipH(comfy.sd1_clip.SDClipModel):
    def __init__(self, device="cpu", dtype=None, **kwargs):
        super().__init__(device=device, dtype=dtype, layer="hidden", layer_idx=-2,
                         textmodel_json_config=_clip_json("clip_h"),
                         special_tokens={"start": 49406, "end": 49407, "pad": 0})


class _TinySD2Clip(comfy.sd1_clip.SD1ClipModel):
    def __init__(self, device="cpu", dtype=None, **kwargs):
        super().__init__(device=device, dtype=dtype, clip_name="h", clip_model=_TinyClipH)


class _TinySDXLClip(comfy.sdxl_clip.SDXLClipModel):
    def __init__(self, device="cpu", dtype=None, **kwargs):
        torch.nn.Module.__init__(self)
        self.clip_l = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            textmodel_json_config=_clip_json("clip_l"))
        self.clip_g = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            textmodel_json_config=_clip_json("clip_g"),
            special_tokens={"start": 49406, "end": 49407, "pad": 0})


# Text encoders per kind: (tokenizer, stock text model, {model name: tiny config}) for hosts whose
# CLIP takes `model_options` (their text models read `<model name>_model_config` overrides).
_STOCK_CLIPS = {
    "sd1": (comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel, {"clip_l": "clip_l"}),
    "sd2v": (_sd2_clip.SD2Tokenizer, _sd2_clip.SD2ClipModel, {"clip_h": "clip_h"}),
    "sdxl": (comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel,
             {"clip_l": "clip_l", "clip_g": "clip_g"}),
}


def _clip_takes_model_options() -> bool:
    return "model_options" in inspect.signature(comfy.sd.CLIP.__init__).parameters


def _build_clip_with_model_options(kind: str) -> comfy.sd.CLIP:
    tokenizer, model, configs = _STOCK_CLIPS[kind]
    overrides = {}
    for model_name, config_name in configs.items():
        with open(_clip_json(config_name)) as fh:
            overrides[f"{model_name}_model_config"] = json.load(fh)
    clip = comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(tokenizer, model), model_options=overrides)
    _check_clip_shapes(clip, configs)
    return clip


def _check_clip_shapes(clip: comfy.sd.CLIP, configs: dict[str, str]) -> None:
    """Fail loudly if the host ignored a tiny config (it would build a full-size text encoder)."""
    for model_name, config_name in configs.items():
        with open(_clip_json(config_name)) as fh:
            expected = json.load(fh)["num_hidden_layers"]
        encoder = getattr(clip.cond_stage_model, model_name)
        if encoder.num_layers != expected:
            raise RuntimeError(f"tiny {model_name} was built with {encoder.num_layers} layers, expected "
                               f"{expected}: this host ignores '{model_name}_model_config'; "
                               "update tiny_models.build_clip for it")


def _build_clip_pinned(kind: str) -> comfy.sd.CLIP:
    """Hosts without CLIP `model_options` (early 2024): tiny configs through constructor args."""
    if kind == "sd1":
        target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)
        target.params = {"textmodel_json_config": _clip_json("clip_l")}
    elif kind == "sd2v":
        target = comfy.supported_models_base.ClipTarget(_sd2_clip.SD2Tokenizer, _TinySD2Clip)
    else:
        target = comfy.supported_models_base.ClipTarget(comfy.sdxl_clip.SDXLTokenizer, _TinySDXLClip)
    return comfy.sd.CLIP(target)


def build_clip(kind: str, seed: int = 0) -> comfy.sd.CLIP:
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {KINDS}")
    if _clip_takes_model_options():
        clip = _build_clip_with_model_options(kind)
    else:
        clip = _build_clip_pinned(kind)
    init_module(clip.cond_stage_model, seed + 2)
    return clip


_CACHE: dict[tuple[str, int], tuple] = {}
_LOCK = threading.Lock()


def build_tiny(kind: str = "sd1", seed: int = 0, cached: bool = True):
    """(ModelPatcher, CLIP, VAE) for `kind`; cached per (kind, seed) because the host caches too."""
    key = (kind, seed)
    with _LOCK:
        if cached and key in _CACHE:
            return _CACHE[key]
        # The host loads every model inside inference_mode (node execution); so do we, so that the
        # weights are inference tensors exactly as with a stock checkpoint loader.
        with torch.inference_mode():
            built = (build_unet(kind, seed), build_clip(kind, seed), build_vae(seed))
        if cached:
            _CACHE[key] = built
        return built


def attention_widths(kind: str) -> dict[str, list[int]]:
    """The attention context widths a tiny model has: self-attention and cross-attention."""
    cfg = unet_config(kind)
    self_widths = sorted({cfg["model_channels"] * m for m in cfg["channel_mult"]})
    return {"self": self_widths, "cross": [cfg["context_dim"]]}
