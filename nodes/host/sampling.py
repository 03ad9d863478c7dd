"""Sampling as the stock nodes do it (XY grid, training previews): prompts, latents, KSampler, VAE decode."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


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
