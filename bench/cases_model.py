"""Model cases: a train step (time, peak memory, FLOPs) and sampling, ours vs. the bare host.

The model is an SD1-shaped UNet built in code with the host's own classes (no weights): three
levels (channel_mult 1, 2, 4), two res blocks per level, one transformer block per res block
(16 attention blocks, as SD1), context 768, eps prediction. model_channels is 64 by default
(SD1 has 320), latents 32x32 (a 256 px image). The hypernetwork covers every attention width of
the model (64, 128, 256 self-attention and the 768 text context), layer structure 1, 2, 1.
"""
from __future__ import annotations

import logging
from typing import Any

from .harness import import_host, interleaved, median, peak_rss_bytes, rss_bytes

logger = logging.getLogger(__name__)

PROMPT = "a photo of a red circle on a white background"


def bench_unet_config(model_channels: int) -> dict:
    return {
        "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
        "in_channels": 4, "out_channels": 4, "model_channels": model_channels,
        "num_res_blocks": [2, 2, 2], "channel_mult": [1, 2, 4],
        "transformer_depth": [1, 1, 1, 1, 1, 1], "transformer_depth_output": [1] * 9,
        "transformer_depth_middle": 1, "use_temporal_resblock": False, "use_temporal_attention": False,
        "context_dim": 768, "use_linear_in_transformer": False, "adm_in_channels": None,
    }


class BenchSetup:
    """The host, the bench UNet (as a stock ModelPatcher), a tiny CLIP and one hypernetwork."""

    def __init__(self, model_channels: int, seed: int = 0):
        env = import_host()
        self.env, self.torch = env, env.torch
        self.bridge = env.pack.nodes.bridge
        self.hn = env.pack.hypernet
        torch, tiny = env.torch, env.tiny
        import comfy.model_management
        import comfy.model_patcher

        torch.manual_seed(seed)
        # The host loads every model inside inference_mode (node execution); so do we.
        with torch.inference_mode():
            config = tiny.MODEL_CONFIGS["sd1"](bench_unet_config(model_channels))
            config.set_inference_dtype(torch.float32, None)
            model = config.get_model({}, "", device=torch.device("cpu"))
            tiny.init_module(model, seed)
            model.eval()
            self.model = comfy.model_patcher.ModelPatcher(
                model, load_device=comfy.model_management.get_torch_device(),
                offload_device=comfy.model_management.unet_offload_device())
            self.clip = tiny.build_clip("sd1", seed)
        self.widths = self.bridge.all_attention_widths(self.model)
        self.unet_params = sum(p.numel() for p in model.diffusion_model.parameters())

    def network(self, name: str = "bench", layer_structure=(1, 2, 1)):
        cfg = self.hn.config.HypernetworkConfig(name=name, sizes=list(self.widths),
                                                layer_structure=list(layer_structure), activation_func="relu")
        with self.torch.inference_mode():
            network = self.hn.module.Hypernetwork.create(cfg)
        return self.hn.trainer.copy_network(network)  # trainable tensors, as the training node does

    def patch(self, network=None):
        Patch = self.hn.patch.HypernetworkPatch
        return Patch([(network, 1.0)]) if network is not None else Patch()


class TrainStep:
    """One training step on the bench model.

    ours: TrainingModel with a hypernetwork patch; forward, MSE loss against the model's target,
    backward to the hypernetwork's parameters, AdamW step (what Trainer does per step).
    baseline: the same TrainingModel class with an empty patch (no hypernetwork); forward and
    backward with respect to the input latents, so backward runs through the whole frozen UNet.
    Inputs (latents, text context, timesteps, noise) are identical for both.
    """

    def __init__(self, setup: BenchSetup, variant: str, batch: int, latent_size: int):
        torch = setup.torch
        self.torch = torch
        self.variant = variant
        with torch.inference_mode():
            cond, pooled = setup.bridge.encode_prompt_for_training(setup.clip, PROMPT)
        gen = torch.Generator().manual_seed(1)
        self.x0 = torch.randn(batch, 4, latent_size, latent_size, generator=gen)
        self.network = setup.network() if variant == "ours" else None
        with torch.inference_mode(False), torch.enable_grad():
            self.training_model = setup.bridge.TrainingModel(setup.model, setup.patch(self.network))
        pixels = latent_size * 8
        self.conds = self.training_model.conditioning(cond.expand(batch, -1, -1).contiguous(), pooled, pixels, pixels)
        self.optimizer = None
        if self.network is not None:
            self.network.train()
            self.optimizer = torch.optim.AdamW(list(self.network.parameters()), lr=1e-5)

    def __call__(self) -> float:
        torch = self.torch
        with torch.inference_mode(False), torch.enable_grad():
            x0 = self.x0.clone()
            if self.optimizer is None:
                x0.requires_grad_(True)
            else:
                self.optimizer.zero_grad(set_to_none=True)
            prediction, target = self.training_model.prediction_and_target(
                x0, self.conds, torch.Generator().manual_seed(2))
            loss = torch.nn.functional.mse_loss(prediction, target)
            loss.backward()
            if self.optimizer is not None:
                self.optimizer.step()
        return float(loss.detach())

    def close(self) -> None:
        self.training_model.close()


def case_train_time(args: dict[str, Any]) -> dict[str, Any]:
    """Median seconds per train step, ours and baseline interleaved in one process."""
    setup = BenchSetup(args["model_channels"])
    steps = {v: TrainStep(setup, v, args["batch"], args["latent"]) for v in ("baseline", "ours")}
    times = interleaved(steps, warmup=args["warmup"], repeats=args["repeats"])
    out = {"baseline": median(times["baseline"]), "ours": median(times["ours"]), "samples": times,
           "unet_params": setup.unet_params, "widths": list(setup.widths),
           "hypernetwork_params": sum(p.numel() for p in steps["ours"].network.parameters())}
    if args.get("flops"):
        out["flops"] = {v: count_flops(setup.torch, steps[v]) for v in steps}
    for step in steps.values():
        step.close()
    return out


def count_flops(torch, step: TrainStep) -> int:
    """FLOPs of one step (forward + backward) as torch's FlopCounterMode counts them (matmuls,
    convolutions, attention; element-wise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def case_train_memory(args: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS growth of a few train steps of one variant (run each variant in its own process).

    Measured as ru_maxrss after the steps minus the RSS just before the first step: the working
    set of training (activations saved for backward, gradients, optimizer state), without the
    interpreter, torch, the host and the model copies, which are the same for both variants.
    """
    setup = BenchSetup(args["model_channels"])
    step = TrainStep(setup, args["variant"], args["batch"], args["latent"])
    import gc

    gc.collect()
    before, peak_before = rss_bytes(), peak_rss_bytes()
    for _ in range(args.get("steps", 3)):
        step()
    peak_after = peak_rss_bytes()
    step.close()
    return {"before": before, "peak_before": peak_before, "peak": peak_after,
            "growth": peak_after - before, "valid": peak_after > peak_before}


def case_sampling(args: dict[str, Any]) -> dict[str, Any]:
    """Median seconds of a KSampler run (euler, cfg 7: cond and uncond batched) with and without
    a 1,2,1 hypernetwork applied by the pack's ApplyHypernetwork path, interleaved."""
    setup = BenchSetup(args["model_channels"])
    torch, bridge = setup.torch, setup.bridge
    from hn_pack.nodes.apply import apply_to_model

    network = setup.network()
    network.eval()
    patched = apply_to_model(setup.model, network, 1.0)
    pixels = args["latent"] * 8
    with torch.inference_mode():
        positive = bridge.encode_prompt(setup.clip, PROMPT)
        negative = bridge.encode_prompt(setup.clip, "")
        latent = bridge.empty_latent(pixels, pixels, args["batch"])

    def run(model):
        def go():
            with torch.inference_mode():
                bridge.sample(model, 7, args["steps"], 7.0, "euler", "normal", positive, negative, latent)
        return go

    times = interleaved({"baseline": run(setup.model), "ours": run(patched)},
                        warmup=args["warmup"], repeats=args["repeats"])
    return {"baseline": median(times["baseline"]), "ours": median(times["ours"]), "samples": times}


def case_profile_train(args: dict[str, Any]) -> dict[str, Any]:
    """torch.profiler table of one `ours` train step (self CPU time by op), for the README notes."""
    setup = BenchSetup(args["model_channels"])
    step = TrainStep(setup, "ours", args["batch"], args["latent"])
    step()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.get("rows", 25))
    step.close()
    return {"table": table}


CASES = {
    "train_time": case_train_time,
    "train_memory": case_train_memory,
    "sampling": case_sampling,
    "profile_train": case_profile_train,
}
