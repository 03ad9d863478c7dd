"""Model cases: a train step (time, peak memory, FLOPs) and sampling, ours vs. the bare host.

The model is an SD1-shaped UNet built in code with the host's own classes (no weights): three
levels (channel_mult 1, 2, 4), two res blocks per level, one transformer block per res block
(16 attention blocks, as SD1), context 768, eps prediction. model_channels is 64 by default
(SD1 has 320), latents 32x32 (a 256 px image). The hypernetwork covers every attention width of
the model (64, 128, 256 self-attention and the 768 text context), layer structure 1, 2, 1.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any

from .harness import PACK_NAME, import_host, interleaved, median, peak_rss_bytes, reset_peak_rss, rss_bytes, trim_malloc

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

    def network(self, name: str = "bench", layer_structure=(1, 2, 1), sizes=None):
        cfg = self.hn.config.HypernetworkConfig(name=name, sizes=list(sizes or self.widths),
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
        self.network = setup.network() if variant != "baseline" else None
        with torch.inference_mode(False), torch.enable_grad():
            patch = setup.patch(self.network)
            self.training_model = setup.bridge.TrainingModel(setup.model, patch)
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
    variants = ["baseline", "ours"]
    steps = {v: TrainStep(setup, v, args["batch"], args["latent"]) for v in variants}
    times = interleaved(steps, warmup=args["warmup"], repeats=args["repeats"], clock=args["clock"])
    out = {v: median(times[v]) for v in variants}
    out.update({"samples": times, "unet_params": setup.unet_params, "widths": list(setup.widths),
           "hypernetwork_params": sum(p.numel() for p in steps["ours"].network.parameters())})
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

    The high-water RSS is reset once the model copy is loaded (Linux /proc/self/clear_refs), so
    the figure is the peak during the steps minus the RSS just before them: the working set of
    training (activations saved for backward, gradients, optimizer state), without the
    interpreter, torch, the host and the model copies, which are the same for both variants.
    """
    setup = BenchSetup(args["model_channels"])
    step = TrainStep(setup, args["variant"], args["batch"], args["latent"])
    import gc

    gc.collect()
    trim_malloc()
    before = rss_bytes()
    reset = reset_peak_rss()
    for _ in range(args.get("steps", 3)):
        step()
    peak = peak_rss_bytes()
    step.close()
    return {"before": before, "peak": peak, "growth": peak - before, "valid": reset}


def case_train_point(args: dict[str, Any]) -> dict[str, Any]:
    """One point of the resolution/batch sweep (`--scaling`): median time of `steps` train steps of
    one variant after one warm-up, and the peak RSS growth during them (as case_train_memory)."""
    import gc
    import time

    setup = BenchSetup(args["model_channels"])
    step = TrainStep(setup, args["variant"], args["batch"], args["latent"])
    step()
    gc.collect()
    trim_malloc()
    before = rss_bytes()
    reset_peak_rss()
    cpu, wall = [], []
    for _ in range(args["steps"]):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - cpu0)
        wall.append(time.perf_counter() - wall0)
    growth = peak_rss_bytes() - before
    flops = count_flops(setup.torch, step)
    step.close()
    return {"cpu": median(cpu), "wall": median(wall), "growth": growth, "flops": flops}


SD1_FULL = {"model_channels": 320, "num_res_blocks": [2, 2, 2, 2], "channel_mult": [1, 2, 4, 4],
            "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "transformer_depth_output": [1] * 9 + [0] * 3}


def case_paper_flops(args: dict[str, Any]) -> dict[str, Any]:
    """FLOPs (FlopCounterMode) of the real SD1.5 UNet shape, counted on the `meta` device (shapes
    only, no arithmetic and no memory): a train step (forward + backward; baseline to the input,
    ours to a 1,2,1 network on widths 320, 640, 1280, 768) at batch 1, and one sampling model call
    (cond + uncond, batch 2), each at `latent` x `latent` latents. For the GPU estimate."""
    env = import_host()
    torch, tiny, hn = env.torch, env.tiny, env.pack.hypernet
    from torch.utils.flop_counter import FlopCounterMode

    config = tiny.MODEL_CONFIGS["sd1"](dict(bench_unet_config(320), **SD1_FULL))
    config.set_inference_dtype(torch.float32, None)
    unet = config.get_model({}, "", device=torch.device("meta")).diffusion_model
    for param in unet.parameters():
        param.requires_grad_(False)
    bridge = env.pack.nodes.bridge  # the same pre-hooks TrainingModel adds (host's in-place adds)
    for norm in bridge._block_norms(unet):
        norm.register_forward_pre_hook(bridge._clone_input)
    widths = [320, 640, 1280, 768]
    network = hn.module.Hypernetwork.create(hn.config.HypernetworkConfig(
        name="paper", sizes=widths, layer_structure=[1, 2, 1], activation_func="relu")).to("meta")
    latent = args["latent"]

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return int(counter.get_total_flops())

    def call(patch, batch, train):
        options = {"patches": {"attn1_patch": [patch], "attn2_patch": [patch]}} if patch is not None else {}
        x = torch.randn(batch, 4, latent, latent, device="meta", requires_grad=train and patch is None)
        context = torch.randn(batch, 77, 768, device="meta")
        out = unet(x, timesteps=torch.ones(batch, device="meta"), context=context, transformer_options=options)
        if train:
            out.float().square().mean().backward()

    Patch = hn.patch.HypernetworkPatch
    out = {"hypernetwork_params": sum(p.numel() for p in network.parameters())}
    for train, batch, label in ((True, 1, "train"), (False, 2, "sample")):
        network.train(train)
        for name, patch in (("baseline", None), ("ours", Patch([(network, 1.0)]))):
            with torch.set_grad_enabled(train):
                out[f"{label}_{name}"] = flops(lambda: call(patch, batch, train))
    return out


def case_sampling(args: dict[str, Any]) -> dict[str, Any]:
    """Median seconds of a KSampler run (euler, cfg 7: cond and uncond batched) without a
    hypernetwork (baseline) and with a 1,2,1 network on every attention width applied through
    the pack's ApplyHypernetwork path (ours), interleaved. Extra variant `ours_context_only`: a
    network with only the 768 (text context) width, which isolates the patch mechanism's overhead
    from the network's own arithmetic on the self-attention inputs."""
    setup = BenchSetup(args["model_channels"])
    torch, bridge = setup.torch, setup.bridge
    apply_to_model = importlib.import_module(f"{PACK_NAME}.nodes.apply").apply_to_model

    network = setup.network()
    network.eval()
    context_only = setup.network("bench_ctx", sizes=[768])
    context_only.eval()
    models = {"baseline": setup.model, "ours": apply_to_model(setup.model, network, 1.0),
              "ours_context_only": apply_to_model(setup.model, context_only, 1.0)}
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

    times = interleaved({name: run(model) for name, model in models.items()},
                        warmup=args["warmup"], repeats=args["repeats"], clock=args["clock"])
    out = {name: median(values) for name, values in times.items()}
    out["samples"] = times
    return out


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
    "train_point": case_train_point,
    "paper_flops": case_paper_flops,
    "sampling": case_sampling,
    "profile_train": case_profile_train,
}
