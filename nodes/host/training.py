"""Training on the host's model: the trainable copy (TrainingModel), latents and prompts for it, unloading."""
from __future__ import annotations

import logging
from typing import Any

import comfy.model_management

from .patches import set_attention_patch
from .sampling import encode_prompt, sample

logger = logging.getLogger(__name__)


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
            set_attention_patch(patcher, patch)
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

        from ...hypernet.train.loss_terms import min_snr_weight, offset_noise

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
