"""Min-SNR weights and offset noise on the real host's eps and v models, and a validated run
with EMA through the Train node in-process (issue 25)."""
from __future__ import annotations

import pytest
import torch

from tests.host.test_training import create, pack, shapes, train  # noqa: F401  (fixtures)


def _training_model(pack, comfy_host, kind):
    bridge, hn = pack.nodes.bridge, pack.hypernet
    model, clip, _ = comfy_host.tiny.build_tiny(kind)
    network = hn.train.trainer.copy_network(create(pack, f"snr_{kind}", [32, 64]))
    with torch.inference_mode():
        cond, pooled = bridge.encode_prompt_for_training(clip, "a red circle")
    training_model = bridge.TrainingModel(model, hn.network.patch.HypernetworkPatch([(network, 1.0)]))
    return training_model, training_model.conditioning(cond, pooled, 64, 64)


@pytest.mark.parametrize("kind", ["sd1", "sd2v"])
def test_min_snr_weight_of_the_host_model_follows_the_paper(comfy_host, pack, kind):
    timesteps = torch.tensor([0, 100, 400, 999])
    with torch.inference_mode(False), torch.no_grad():
        training_model, conds = _training_model(pack, comfy_host, kind)
        try:
            x0 = torch.randn(4, 4, 8, 8)
            noise = torch.randn(4, 4, 8, 8)
            conds = {k: v.expand(4, *v.shape[1:]) for k, v in conds.items()}
            prediction, target, weight = training_model.prediction_and_target(
                x0, conds, None, timesteps=timesteps, noise=noise, min_snr_gamma=5.0)
            plain = training_model.prediction_and_target(x0, conds, None, timesteps=timesteps, noise=noise)
            alphas_cumprod = 1 / (1 + training_model.base.model_sampling.sigmas.double() ** 2)
        finally:
            training_model.close()
    assert torch.equal(prediction, plain[0]) and torch.equal(target, plain[1]) and len(plain) == 2
    snr = alphas_cumprod[timesteps] / (1 - alphas_cumprod[timesteps])
    expected = torch.clamp(snr, max=5.0) / (snr + 1 if kind == "sd2v" else snr)
    assert torch.allclose(weight.flatten().double(), expected, rtol=1e-4), (weight.flatten(), expected)


def test_noise_offset_and_min_snr_change_training(comfy_host, pack, shapes):  # noqa: F811
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    runs = {}
    for label, options in (("plain", {}), ("offset", {"noise_offset": 0.1}), ("snr", {"min_snr_gamma": 5.0})):
        out = train(pack, model, clip, vae, shapes, create(pack, f"opt_{label}", [32, 64]), steps=3, **options)
        runs[label] = out["result"][2].losses
    assert all(torch.isfinite(torch.tensor(v)).all() for v in runs.values())
    assert runs["offset"] != runs["plain"] and runs["snr"] != runs["plain"]
    assert sum(runs["snr"]) < sum(runs["plain"])  # weights are <= 1 for eps models


def test_validation_holds_out_images_and_is_repeatable(comfy_host, pack, shapes):  # noqa: F811
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    results = []
    for name in ("val_a", "val_b"):
        out = train(pack, model, clip, vae, shapes, create(pack, name, [32, 64]), steps=4, save_every=2,
                    validation_images="25%", ema_decay=0.9)
        results.append(out)
    histories = [out["result"][2] for out in results]
    assert [s for s, _ in histories[0].validations()] == [2, 4]
    assert histories[0].validations() == histories[1].validations()  # same data + seed: to the bit
    assert histories[0].validations("val_loss_ema") == histories[1].validations("val_loss_ema")
    report = results[0]["ui"]["text"][0]
    assert "validation: 1 held-out image(s), never trained on" in report
    assert "best checkpoint (lowest validation loss" in report
