"""Issue 25's two costs, measured in one process on the CPU (ratios to a baseline taken in the
same run, CPU time of this process, torch single-threaded):

- latent disk cache: the first epoch of a second run on the same images (latents read from the
  cache) vs the first run (every image through the VAE encoder). Goal <= 0.6.
- validation: one held-out image's validation pass (4 fixed timesteps, no gradients) vs one
  training step.

The model is the tiny SD1 UNet/CLIP of the tests with a full-size SD KL VAE (random weights, the real
encoder shape), 8 images at 256 px, batch 1. Run: `python -m bench.judging` with the host's Python
(`eval "$(python3 scripts/hostenv.py --print-env)"; $HN_PYTHON -m bench.judging`). Writes nothing
outside a temp folder; prints one JSON object per case.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import import_host, load_support_module
from bench.sd15_file import SD_VAE_DDCONFIG

IMAGES = 8
SIZE = 256


def sd_vae(torch, tiny):
    """A VAE with SD's KL autoencoder shape (84 M parameters), seeded random weights (the host's
    layers skip initialisation, so they are filled as the tests' tiny models are)."""
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    kl = AutoencoderKL(ddconfig=SD_VAE_DDCONFIG, embed_dim=4)
    tiny.init_module(kl, 1)
    return comfy.sd.VAE(sd=kl.state_dict())


def main() -> int:
    host = import_host(cpu=True)
    torch = host.torch
    torch.set_num_threads(1)
    import folder_paths

    work = Path(tempfile.mkdtemp(prefix="hn_bench_judging_"))
    (work / "hypernetworks").mkdir()
    folder_paths.folder_names_and_paths["hypernetworks"][0].insert(0, str(work / "hypernetworks"))
    folder_paths.set_output_directory(str(work / "output"))
    folder_paths.set_temp_directory(str(work / "temp"))
    if hasattr(folder_paths, "set_user_directory"):
        folder_paths.set_user_directory(str(work / "user"))
    else:
        folder_paths.user_directory = str(work / "user")
    datasets = load_support_module("datasets")
    folder = datasets.make_shapes_dataset(work / "images", count=IMAGES, size=SIZE)
    pack = host.pack
    import importlib

    for name in ("data.load", "network.config", "network.module"):
        importlib.import_module(f"{pack.__name__}.hypernet.{name}")
    train_module = importlib.import_module(f"{pack.__name__}.nodes.train")
    dataset = pack.hypernet.data.load.load_dataset(str(folder)).dataset
    model, clip, _ = host.tiny.build_tiny("sd1")
    vae = sd_vae(torch, host.tiny)

    def run(name: str, steps: int, **options) -> float:
        config = pack.hypernet.network.hypernetwork_config.HypernetworkConfig(name=name, sizes=[32, 64], seed=0)
        with torch.inference_mode():
            network = pack.hypernet.network.module.Hypernetwork.create(config)
        node = train_module.TrainHypernetwork()
        started = time.process_time()
        with torch.inference_mode():
            node.train(model, clip, vae, dataset, "none", template="[filewords]", learning_rate="1e-3", steps=steps,
                       batch_size=1, grad_accumulation_steps=1, seed=0, save_every=0, resume=False,
                       hypernetwork=network, **options)
        return time.process_time() - started

    epoch = IMAGES  # batch 1: one epoch is one step per image
    first = run("cold", epoch)
    second = run("warm", epoch)
    print(json.dumps({"case": "latent_disk_cache_first_epoch", "ours": round(second, 3),
                      "baseline": round(first, 3), "ratio": round(second / first, 3), "goal": 0.6,
                      "pass": second / first <= 0.6}))
    one = run("one_step", 1)
    many = run("many_steps", 1 + 2 * epoch)
    validated = run("validated", 1 + 2 * epoch, validation_images="1", validate_every=1)
    step = (many - one) / (2 * epoch)
    per_pass = (validated - many) / (1 + 2 * epoch)  # one held-out image per pass
    print(json.dumps({"case": "validation_pass_per_image_vs_train_step", "ours": round(per_pass, 4),
                      "baseline": round(step, 4), "ratio": round(per_pass / step, 3), "goal": None,
                      "pass": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
