"""An SD1.5-sized single-file checkpoint made in code: the real key layout (UNet 860 M, CLIP-L
123 M, VAE 84 M parameters), random weights, saved as safetensors (fp16, ~2 GB), so that the host's
own Load Checkpoint detects and loads it as SD1.5. Nothing is downloaded.

Needs the host imported (bench.harness.import_host). Build it in a child process: building holds the
three models and their state dict at once (~5 GB of RAM for a moment).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .cases_model import SD1_FULL, bench_unet_config
from .harness import import_host

# v2: the VAE has SD's shape; v1 files held the x4-upscaler VAE (latents at 1/4 size), so the Train
# node trained at twice the floor's resolution.
FILE_NAME = "hn_bench_sd15_random_v2.safetensors"
# SD1.x/SD2.x KL autoencoder (84 M parameters, 1/8 latents)
SD_VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                   "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def _random_(module: Any, seed: int, torch: Any) -> None:
    """Fill every parameter with fan-in scaled normals (norm layers 1/0), chunk by chunk, so that
    the forward stays finite; values are meaningless, shapes and memory are real."""
    gen = torch.Generator().manual_seed(seed)
    norms = {id(p) for m in module.modules() if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm))
             for p in m.parameters(recurse=False)}
    with torch.inference_mode():
        for name, param in module.named_parameters():
            if id(param) in norms or param.ndim < 2:
                param.fill_(1.0 if id(param) in norms and name.endswith("weight") else 0.0)
                if param.ndim < 2 and id(param) not in norms and not name.endswith("bias"):
                    param.copy_((torch.randn(param.shape, generator=gen) * 0.02).to(param.dtype))
                continue
            std = 0.02 if "embedding" in name else param[0].numel() ** -0.5
            flat = param.view(param.shape[0], -1)
            for start in range(0, flat.shape[0], 256):
                rows = flat[start:start + 256]
                rows.copy_((torch.randn(rows.shape, generator=gen) * std).to(param.dtype))


def build(folder: str, seed: int = 0) -> dict[str, Any]:
    """Write FILE_NAME into `folder` (kept if already there); return its path and parameter counts."""
    path = Path(folder) / FILE_NAME
    if path.is_file():
        return {"path": str(path), "bytes": path.stat().st_size, "reused": True}
    env = import_host(cpu=True)
    torch = env.torch
    import comfy.sd
    import comfy.supported_models
    import comfy.utils
    from comfy.ldm.models.autoencoder import AutoencoderKL

    with torch.inference_mode():  # as the host builds models (its CLIP init writes into its weights)
        config = comfy.supported_models.SD15(dict(bench_unet_config(320), **SD1_FULL))
        config.set_inference_dtype(torch.float16, None)
        unet_model = config.get_model({}, "", device=torch.device("cpu"))
        _random_(unet_model, seed, torch)
        clip = comfy.sd.CLIP(config.clip_target())
        _random_(clip.cond_stage_model, seed + 1, torch)
        # VAE(sd={}) would pick the x4 upscaler's VAE: build SD's KL autoencoder shape explicitly
        kl = AutoencoderKL(ddconfig=SD_VAE_DDCONFIG, embed_dim=4)
        _random_(kl, seed + 2, torch)
        vae = comfy.sd.VAE(sd=kl.state_dict())
        counts = {"unet": sum(p.numel() for p in unet_model.diffusion_model.parameters()),
                  "clip": sum(p.numel() for p in clip.cond_stage_model.parameters()),
                  "vae": sum(p.numel() for p in vae.first_stage_model.parameters())}
        state = unet_model.state_dict_for_saving(clip.get_sd(), vae.get_sd(), None)
        del clip, vae, unet_model, kl
        state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    comfy.utils.save_torch_file(state, str(tmp))
    os.replace(tmp, path)
    return {"path": str(path), "bytes": path.stat().st_size, "reused": False, "params": counts}


def load(path: str) -> tuple[Any, Any, Any]:
    """(MODEL, CLIP, VAE) through the host's own Load Checkpoint node, inside inference mode as the
    host runs nodes; the file's folder is registered as a checkpoints folder."""
    env = import_host(cpu=True)
    import folder_paths

    folder, name = os.path.split(os.path.abspath(path))
    folder_paths.add_model_folder_path("checkpoints", folder)
    with env.torch.inference_mode():
        model, clip, vae = env.nodes.CheckpointLoaderSimple().load_checkpoint(name)[:3]
    if getattr(vae, "downscale_ratio", 8) != 8:
        raise RuntimeError(f"{path}: its VAE makes 1/{vae.downscale_ratio} latents, not SD's 1/8; delete the file "
                           "to rebuild it")
    return model, clip, vae
