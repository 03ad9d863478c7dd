"""Real-size memory: an SD1.5-sized single-file checkpoint (bench/sd15_file.py) loaded through the
host's Load Checkpoint, trained at 256 px on the CPU. One variant per child process:

- `floor`: the frozen UNet's forward and backward (to the input latents and the text context, as a
  hypernetwork's gradient must travel), batch 1;
- `step`: our train step (TrainingModel + a 1,2,1 network on 320/640/1280/768 + AdamW), with a
  census of what the network's part of autograd saves, its gradients and AdamW state;
- `node`: the whole TrainHypernetwork node (VAE-encodes a 2-image dataset, encodes the captions,
  trains, saves a checkpoint every step, writes the final file) with the same network.

The RSS high-water mark is reset once the checkpoint is loaded; each figure is the peak during the
variant minus the RSS just before it, so the model the host loaded is not in it, but anything
training adds (a copy of the model, too) is.
"""
from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

from . import sd15_file
from .cases_model import BenchSetup, TrainStep, working_set_census
from .harness import import_host, load_support_module, peak_rss_bytes, reset_peak_rss, rss_bytes, trim_malloc


def _reset() -> tuple[int, bool]:
    gc.collect()
    trim_malloc()
    return rss_bytes(), reset_peak_rss()


def case_realsize_build(args: dict[str, Any]) -> dict[str, Any]:
    return sd15_file.build(args["folder"])


def case_realsize_memory(args: dict[str, Any]) -> dict[str, Any]:
    env = import_host(cpu=True)
    model, clip, vae = sd15_file.load(args["path"])
    setup = BenchSetup.from_loaded(env, model, clip)
    unet_bytes = sum(p.numel() * p.element_size() for p in model.model.diffusion_model.parameters())
    out: dict[str, Any] = {"unet_params": setup.unet_params, "unet_bytes": unet_bytes, "loaded_rss": rss_bytes(),
                           "widths": list(setup.widths)}
    variant, steps = args["variant"], args.get("steps", 2)
    if variant == "node":
        out.update(_node_memory(env, setup, model, clip, vae, args))
        return out
    before, valid = _reset()
    step = TrainStep(setup, "baseline" if variant == "floor" else "ours", args["batch"], args["latent"])
    for _ in range(steps):
        step()
    peak = peak_rss_bytes()
    out.update(before=before, peak=peak, growth=peak - before, valid=valid, copy_bytes=step.training_model.copy_bytes)
    out.update(working_set_census(step, model.model.parameters()))
    step.close()
    return out


def _node_memory(env: Any, setup: BenchSetup, model: Any, clip: Any, vae: Any, args: dict[str, Any]) -> dict:
    """Peak growth of one TrainHypernetwork run, as the server would run it (inference mode)."""
    import importlib

    import folder_paths

    torch = env.torch
    datasets = load_support_module("datasets")
    load = importlib.import_module(f"{env.pack.__name__}.hypernet.data.load")
    train_node = importlib.import_module(f"{env.pack.__name__}.nodes.train")
    with tempfile.TemporaryDirectory(prefix="hn_bench_realsize_") as tmp:
        root = Path(tmp)
        folder_paths.folder_names_and_paths["hypernetworks"] = ([str(root / "hypernetworks")], {".pt"})
        (root / "hypernetworks").mkdir()
        folder_paths.set_temp_directory(str(root / "temp"))
        folder_paths.set_output_directory(str(root / "output"))
        pixels = args["latent"] * 8
        dataset = load.load_dataset(str(datasets.make_shapes_dataset(root / "shapes", count=2, size=pixels))).dataset
        network = setup.network("realsize")
        with torch.inference_mode():  # what CreateHypernetwork hands the Train node
            network = setup.hn.network.module.Hypernetwork.create(network.config)
        phases = _phase_peaks(env.pack.nodes.host.training.TrainingModel)
        before, valid = _reset()
        with torch.inference_mode():
            result = train_node.TrainHypernetwork().train(
                model=model, clip=clip, vae=vae, dataset=dataset, hypernetwork_name="none", template="[filewords]",
                learning_rate="1e-5", steps=args.get("steps", 2), batch_size=args["batch"], grad_accumulation_steps=1,
                seed=0, save_every=args.get("save_every", 1), resume=False, hypernetwork=network)
        phases.finish(peak_rss_bytes())
        peak = max(phases.peaks.values())  # the high-water mark was reset between phases
        report = result["ui"]["text"][0]
    return {"before": before, "peak": peak, "growth": peak - before, "valid": valid, "report": report,
            "phases": {name: value - before for name, value in phases.peaks.items()},
            "network_param_bytes": sum(p.numel() * p.element_size() for p in network.parameters())}


class _phase_peaks:
    """Peak RSS per phase of a Train node run: before training (VAE and CLIP encoding of the
    dataset), training (TrainingModel alive: the steps), after (the final file): the high-water
    mark is read and reset where TrainingModel is made and closed (wrapped for this process only)."""

    def __init__(self, training_model_class: Any):
        self.peaks: dict[str, int] = {}
        original_init, original_close = training_model_class.__init__, training_model_class.close
        phases = self

        def init(model_self, *args, **kwargs):
            phases.peaks["encode (VAE, CLIP) before training"] = peak_rss_bytes()
            reset_peak_rss()
            original_init(model_self, *args, **kwargs)

        def close(model_self):
            original_close(model_self)
            phases.peaks["training"] = peak_rss_bytes()
            reset_peak_rss()

        training_model_class.__init__, training_model_class.close = init, close

    def finish(self, peak: int) -> None:
        self.peaks["after training (final file, report)"] = peak


CASES = {"realsize_build": case_realsize_build, "realsize_memory": case_realsize_memory}
