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


def bench_unet_config(model_channels: int, sd15: bool = False) -> dict:
    """The bench UNet; `sd15`: the real SD1.5 shape (model_channels 320, four levels, 860 M)."""
    config = {
        "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
        "in_channels": 4, "out_channels": 4, "model_channels": model_channels,
        "num_res_blocks": [2, 2, 2], "channel_mult": [1, 2, 4],
        "transformer_depth": [1, 1, 1, 1, 1, 1], "transformer_depth_output": [1] * 9,
        "transformer_depth_middle": 1, "use_temporal_resblock": False, "use_temporal_attention": False,
        "context_dim": 768, "use_linear_in_transformer": False, "adm_in_channels": None,
    }
    return {**config, **SD1_FULL} if sd15 else config


class BenchSetup:
    """The host, the bench UNet (as a stock ModelPatcher), a tiny CLIP and one hypernetwork."""

    def __init__(self, model_channels: int, seed: int = 0, device: str = "cpu", dtype: str = "fp32",
                 sd15: bool = False):
        env = import_host(cpu=device == "cpu")
        self.env, self.torch = env, env.torch
        self.host = env.pack.nodes.host
        self.hn = env.pack.hypernet
        torch, tiny = env.torch, env.tiny
        import comfy.model_management
        import comfy.model_patcher

        torch.manual_seed(seed)
        # The host loads every model inside inference_mode (node execution); so do we.
        with torch.inference_mode():
            config = tiny.MODEL_CONFIGS["sd1"](bench_unet_config(model_channels, sd15))
            config.set_inference_dtype(DTYPES[dtype](torch), None)
            model = config.get_model({}, "", device=torch.device("cpu"))
            tiny.init_module(model, seed)
            model.eval()
            self.model = comfy.model_patcher.ModelPatcher(
                model, load_device=comfy.model_management.get_torch_device(),
                offload_device=comfy.model_management.unet_offload_device())
            self.clip = tiny.build_clip("sd1", seed)
        self._measure()

    @classmethod
    def from_loaded(cls, env: Any, model: Any, clip: Any) -> "BenchSetup":
        """A setup around a MODEL and CLIP the host loaded (e.g. from a checkpoint file)."""
        setup = cls.__new__(cls)
        setup.env, setup.torch = env, env.torch
        setup.host, setup.hn = env.pack.nodes.host, env.pack.hypernet
        setup.model, setup.clip = model, clip
        setup._measure()
        return setup

    def _measure(self) -> None:
        self.widths = self.host.patches.all_attention_widths(self.model)
        self.unet_params = sum(p.numel() for p in self.model.model.diffusion_model.parameters())

    def network(self, name: str = "bench", layer_structure=(1, 2, 1), sizes=None):
        cfg = self.hn.network.hypernetwork_config.HypernetworkConfig(name=name, sizes=list(sizes or self.widths),
                                                layer_structure=list(layer_structure), activation_func="relu")
        with self.torch.inference_mode():
            network = self.hn.network.module.Hypernetwork.create(cfg)
        return self.hn.train.trainer.copy_network(network)  # trainable tensors, as the training node does

    def patch(self, network=None, memo: bool = True):
        """Our patch (memo: True) or the A1111-style application of the same network (no memo)."""
        Patch = bench_patch_classes(self.hn.network.patch.HypernetworkPatch)[memo]
        return Patch([(network, 1.0)]) if network is not None else Patch()


DTYPES = {"fp32": lambda torch: torch.float32, "fp16": lambda torch: torch.float16}


def setup_from(args: dict[str, Any]) -> "BenchSetup":
    return BenchSetup(args["model_channels"], device=args.get("device", "cpu"), dtype=args.get("dtype", "fp32"),
                      sd15=args.get("sd15", False))


_PATCH_CLASSES: dict = {}


def bench_patch_classes(base: type) -> dict[bool, type]:
    """{True: our patch with a recorder, False: the same without the memo (A1111-style: K and V
    recomputed in every layer)}. `recorder` (a list or None) collects each call's (k, v, is_self)
    and `marks` (a list or None) is True while the network runs (for the saved-tensor census)."""
    if base in _PATCH_CLASSES:
        return _PATCH_CLASSES[base]

    class BenchPatch(base):
        recorder = None
        inside = False

        def __call__(self, q, k, v, extra_options=None):
            if self.recorder is not None:
                self.recorder.append((k.detach(), v.detach(), k is q))
            type(self).inside = True
            try:
                return super().__call__(q, k, v, extra_options)
            finally:
                type(self).inside = False

    class NoMemoPatch(BenchPatch):
        def _run(self, entry, slot, module, x, strength):
            return module(x, strength)

    _PATCH_CLASSES[base] = {True: BenchPatch, False: NoMemoPatch}
    return _PATCH_CLASSES[base]


class TrainStep:
    """One training step on the bench model.

    ours: TrainingModel with a hypernetwork patch; forward, MSE loss against the model's target,
    backward to the hypernetwork's parameters, AdamW step (what Trainer does per step).
    a1111: the same, with the memo off (K and V recomputed in every attention layer).
    baseline: the same TrainingModel class with an empty patch (no hypernetwork); forward and
    backward with respect to the input latents and the text context, so backward runs through the
    whole frozen UNet and its cross-attention K/V projections (as it must to reach a network).
    Inputs (latents, text context, timesteps, noise) are identical for all.
    """

    def __init__(self, setup: BenchSetup, variant: str, batch: int, latent_size: int):
        torch = setup.torch
        self.torch = torch
        self.variant = variant
        with torch.inference_mode():
            cond, pooled = setup.host.training.encode_prompt_for_training(setup.clip, PROMPT)
        gen = torch.Generator().manual_seed(1)
        self.x0 = torch.randn(batch, 4, latent_size, latent_size, generator=gen)
        self.network = setup.network() if variant != "baseline" else None
        with torch.inference_mode(False), torch.enable_grad():
            self.patch = setup.patch(self.network, memo=variant != "a1111")
            self.training_model = setup.host.training.TrainingModel(setup.model, self.patch)
        self.x0 = self.x0.to(self.training_model.device)
        pixels = latent_size * 8
        self.conds = self.training_model.conditioning(cond.expand(batch, -1, -1).contiguous(), pooled, pixels, pixels)
        if variant == "baseline":  # backward also to the text context: the cross-attention K/V inputs
            with torch.inference_mode(False):  # get gradients, as the network's outputs must in a train step
                self.conds["c_crossattn"] = self.conds["c_crossattn"].detach().clone().requires_grad_(True)
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


class NetworkOnlyStep:
    """The hypernetwork modules' own work in a train step, without the UNet: forward of the K and V
    modules on the very K/V inputs one `ours` step feeds them (recorded once; each distinct input
    once, as the memo does), backward with fixed random output gradients (and to the inputs of
    self-attention layers, which the real step needs too), then the AdamW step."""

    def __init__(self, setup: BenchSetup, ours: TrainStep):
        torch = setup.torch
        self.torch = torch
        ours.patch.recorder = []
        ours()
        recorded, ours.patch.recorder = ours.patch.recorder, None
        self.network = setup.network()
        self.network.train()
        if recorded:  # the patch moves its network to the activations' device; do the same here
            self.network.to(recorded[0][0].device)
        self.optimizer = torch.optim.AdamW(list(self.network.parameters()), lr=1e-5)
        gen = torch.Generator().manual_seed(3)
        self.work = []  # (input, K module or None, V module or None, grad K, grad V)
        seen = set()
        for k, v, is_self in recorded:
            for x, slot in ((k, 0), (v, 1)):
                pair = self.network.pair(x.shape[-1])
                key = (x.data_ptr(), tuple(x.shape), slot)  # recorded tensors stay alive: no reuse
                if pair is None or key in seen:
                    continue
                seen.add(key)
                leaf = x.detach().clone().requires_grad_(is_self)
                grad = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
                self.work.append((leaf, pair[slot], grad))
        self.inputs = len(recorded)

    def __call__(self) -> None:
        torch = self.torch
        with torch.inference_mode(False), torch.enable_grad():
            self.optimizer.zero_grad(set_to_none=True)
            outs, grads = [], []
            for leaf, module, grad in self.work:
                leaf.grad = None
                outs.append(module(leaf, 1.0))
                grads.append(grad)
            torch.autograd.backward(outs, grads)
            self.optimizer.step()
        sync(torch)

    def close(self) -> None:
        self.work = []


def sync(torch) -> None:
    """Wait for queued GPU work, so a timed call includes it."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def case_train_time(args: dict[str, Any]) -> dict[str, Any]:
    """Median seconds per train step, interleaved in one process:
    baseline (frozen UNet fwd+bwd to the input), ours (our patch, memo on), a1111 (the same network
    applied in every attention layer, K and V recomputed each time, no memo) and network (the
    network's own fwd+bwd+AdamW on the K/V inputs of an `ours` step). floor = baseline + network."""
    setup = setup_from(args)
    variants = ["baseline", "ours", "a1111"]
    steps: dict[str, Any] = {v: TrainStep(setup, v, args["batch"], args["latent"]) for v in variants}
    steps["network"] = NetworkOnlyStep(setup, steps["ours"])
    timed = {name: (lambda step=step: (step(), sync(setup.torch))) for name, step in steps.items()}
    times = interleaved(timed, warmup=args["warmup"], repeats=args["repeats"], clock=args["clock"])
    out = {v: median(times[v]) for v in steps}
    out["floor"] = out["baseline"] + out["network"]
    out.update({"samples": times, "unet_params": setup.unet_params, "widths": list(setup.widths),
                "hypernetwork_params": sum(p.numel() for p in steps["ours"].network.parameters()),
                "network_inputs": steps["network"].inputs})
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


def _memory_probe(torch, device) -> tuple[Any, Any]:
    """(reset, read) for the peak: RSS high-water mark on CPU, the CUDA allocator's peak on a GPU."""
    if str(device).startswith("cuda"):
        def reset():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated(), True

        def read():
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated()
        return reset, read

    def reset_cpu():
        import gc

        gc.collect()
        trim_malloc()
        before = rss_bytes()
        return before, reset_peak_rss()
    return reset_cpu, peak_rss_bytes


def saved_tensor_census(step: TrainStep, exclude: set[int]) -> dict[str, int]:
    """Bytes autograd saves for backward during one step, per distinct storage, split into what is
    saved while the hypernetwork runs (`network`) and the rest (`unet`); parameters excluded."""
    torch = step.torch
    seen: dict[int, tuple[str, int]] = {}
    patch_class = type(step.patch)

    def pack(tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in exclude and key not in seen:
            seen[key] = ("network" if patch_class.inside else "unet", storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    out = {"network": 0, "unet": 0}
    for kind, nbytes in seen.values():
        out[kind] += nbytes
    return out


def working_set_census(step: TrainStep, model_params: Any) -> dict[str, Any]:
    """What a step's working set holds, after it ran: the network's weights, gradients, AdamW state
    and memo (exactly), and what autograd saves in one more step (saved_tensor_census; the model's
    and the network's parameters excluded)."""
    torch = step.torch
    out: dict[str, Any] = {}
    exclude = {p.untyped_storage().data_ptr() for p in model_params}
    if step.network is not None:
        net_params = list(step.network.parameters())
        exclude |= {p.untyped_storage().data_ptr() for p in net_params}
        out["network_param_bytes"] = sum(p.numel() * p.element_size() for p in net_params)
        out["grad_bytes"] = sum(p.grad.numel() * p.grad.element_size() for p in net_params if p.grad is not None)
        out["optimizer_bytes"] = sum(t.numel() * t.element_size() for state in step.optimizer.state.values()
                                     for t in state.values() if torch.is_tensor(t))
        out["memo_bytes"] = sum(entry[2].numel() * entry[2].element_size() for entry in step.patch._memo.values())
    out["saved"] = saved_tensor_census(step, exclude)
    return out


def case_train_memory(args: dict[str, Any]) -> dict[str, Any]:
    """Peak memory growth of a few train steps of one variant (run each variant in its own process).

    On CPU the high-water RSS is reset once the model copy is loaded (Linux /proc/self/clear_refs),
    on a GPU the CUDA allocator's peak; the figure is the peak during the steps minus the memory
    just before them: the working set of training (activations saved for backward, gradients,
    optimizer state, the memo), without the interpreter, torch, the host and the model copies.
    Afterwards (outside the peak) it takes a census of what that working set holds.
    """
    setup = setup_from(args)
    step = TrainStep(setup, args["variant"], args["batch"], args["latent"])
    torch = setup.torch
    reset, read = _memory_probe(torch, step.training_model.device)
    before, valid = reset()
    for _ in range(args.get("steps", 3)):
        step()
    peak = read()
    out = {"before": before, "peak": peak, "growth": peak - before, "valid": valid,
           "copy_bytes": step.training_model.copy_bytes}
    out.update(working_set_census(step, step.training_model.base.parameters()))
    step.close()
    return out


def case_train_point(args: dict[str, Any]) -> dict[str, Any]:
    """One point of the resolution/batch sweep (`--scaling`): median time of `steps` train steps of
    one variant after one warm-up, and the peak RSS growth during them (as case_train_memory)."""
    import gc
    import time

    setup = setup_from(args)
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
    host = env.pack.nodes.host  # the same pre-hooks TrainingModel adds (host's in-place adds)
    for norm in host.training._block_norms(unet):
        norm.register_forward_pre_hook(host.training._clone_input)
    widths = [320, 640, 1280, 768]
    network = hn.network.module.Hypernetwork.create(hn.network.hypernetwork_config.HypernetworkConfig(
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

    Patch = hn.network.patch.HypernetworkPatch
    out = {"hypernetwork_params": sum(p.numel() for p in network.parameters())}
    for train, batch, label in ((True, 1, "train"), (False, 2, "sample")):
        network.train(train)
        for name, patch in (("baseline", None), ("ours", Patch([(network, 1.0)]))):
            with torch.set_grad_enabled(train):
                out[f"{label}_{name}"] = flops(lambda: call(patch, batch, train))
    return out


def case_sampling(args: dict[str, Any], setup: "BenchSetup | None" = None) -> dict[str, Any]:
    """Median seconds of a KSampler run (euler, cfg 7: cond and uncond batched), interleaved:
    ours = a 1,2,1 network on every attention width through the pack's ApplyHypernetwork path;
    stock = the same network saved as an A1111 .pt and applied with ComfyUI's own
    HypernetworkLoader patch (comfy_extras.nodes_hypernetwork); baseline = no hypernetwork;
    ours_context_only = a network with only the 768 width (the patch mechanism's overhead)."""
    import os
    import tempfile

    setup = setup or setup_from(args)
    torch, host = setup.torch, setup.host
    apply_to_model = importlib.import_module(f"{PACK_NAME}.nodes.apply").apply_to_model
    import comfy_extras.nodes_hypernetwork as stock_loader

    network = setup.network()
    network.eval()
    context_only = setup.network("bench_ctx", sizes=[768])
    context_only.eval()
    with tempfile.TemporaryDirectory(prefix="hn_bench_stock_") as folder:
        path = os.path.join(folder, "bench.pt")
        setup.hn.network.fileio.save_pt(network, path)
        stock_patch = stock_loader.load_hypernetwork_patch(path, 1.0)
    models = {"baseline": setup.model, "ours": apply_to_model(setup.model, network, 1.0),
              "stock": host.patches.with_attention_patch(setup.model, stock_patch),
              "ours_context_only": apply_to_model(setup.model, context_only, 1.0)}
    pixels = args["latent"] * 8
    with torch.inference_mode():
        positive = host.sampling.encode_prompt(setup.clip, PROMPT)
        negative = host.sampling.encode_prompt(setup.clip, "")
        latent = host.sampling.empty_latent(pixels, pixels, args["batch"])

    def run(model):
        def go():
            with torch.inference_mode():
                host.sampling.sample(model, 7, args["steps"], 7.0, "euler", "normal", positive, negative, latent)
            sync(torch)
        return go

    runners, errors = {}, {}
    for name, model in models.items():
        try:
            run(model)()
            runners[name] = run(model)
        except Exception as exc:  # noqa: BLE001 -- reported, so the other variants still get measured
            if name == "baseline" or name == "ours":
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
    times = interleaved(runners, warmup=args["warmup"], repeats=args["repeats"], clock=args["clock"])
    out: dict[str, Any] = {name: median(values) for name, values in times.items()}
    out["samples"] = times
    out["errors"] = errors
    return out


def case_profile_train(args: dict[str, Any]) -> dict[str, Any]:
    """torch.profiler table of one `ours` train step (self CPU time by op), for the README notes."""
    setup = setup_from(args)
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


def _peak_of(step, reset, read) -> int:
    """Peak memory growth of one call of `step` (after a warm-up call, so lazy state exists)."""
    before, _ = reset()
    step()
    return read() - before


def case_gpu_point(args: dict[str, Any]) -> dict[str, Any]:
    """Everything bench/gpu.py reports for one dtype, in one process (the model is built once):
    per batch, train step times (ours, frozen UNet fwd+bwd, the network's own work, A1111-style)
    on the wall clock, the peak memory of a baseline and an ours step (CUDA allocator's peak on a
    GPU, RSS on a CPU) with a census of the network's saved activations, gradients and AdamW
    state; then a KSampler run with ours, the stock HypernetworkLoader patch and no network."""
    setup = setup_from(args)
    torch = setup.torch
    out: dict[str, Any] = {"unet_params": setup.unet_params, "widths": list(setup.widths), "train": {},
                           "device_name": torch.cuda.get_device_name() if args.get("device") == "cuda" else "cpu"}
    for batch in args["batches"]:
        steps: dict[str, Any] = {v: TrainStep(setup, v, batch, args["latent"]) for v in ("baseline", "ours", "a1111")}
        steps["network"] = NetworkOnlyStep(setup, steps["ours"])
        timed = {name: (lambda step=step: (step(), sync(torch))) for name, step in steps.items()}
        times = interleaved(timed, warmup=args["warmup"], repeats=args["repeats"], clock="wall")
        point = {v: median(times[v]) for v in steps}
        reset, read = _memory_probe(torch, steps["ours"].training_model.device)
        for variant in ("a1111", "network"):
            steps.pop(variant).close()
        import gc

        gc.collect()
        point["peak_baseline"] = _peak_of(steps["baseline"], reset, read)
        point["peak_ours"] = _peak_of(steps["ours"], reset, read)
        ours = steps["ours"]
        net_params = list(ours.network.parameters())
        point["grad_bytes"] = sum(p.numel() * p.element_size() for p in net_params)
        point["optimizer_bytes"] = sum(t.numel() * t.element_size() for state in ours.optimizer.state.values()
                                       for t in state.values() if torch.is_tensor(t))
        exclude = {p.untyped_storage().data_ptr() for p in ours.training_model.base.parameters()}
        exclude |= {p.untyped_storage().data_ptr() for p in net_params}
        point["saved"] = saved_tensor_census(ours, exclude)
        for step in steps.values():
            step.close()
        del steps
        gc.collect()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
        out["train"][str(batch)] = point
    out["sampling"] = _sampling_times(setup, args)
    return out


def _sampling_times(setup: BenchSetup, args: dict[str, Any]) -> dict[str, Any]:
    """Wall seconds of a KSampler run per variant (see case_sampling); a variant that fails (e.g.
    the stock patch on fp16 weights on an old host) is reported under `errors` instead."""
    return case_sampling(dict(args, batch=1, steps=args["sampling_steps"], clock="wall",
                              warmup=1, repeats=max(2, args["repeats"] // 2)), setup=setup)


CASES["gpu_point"] = case_gpu_point
