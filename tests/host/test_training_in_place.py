"""Training without a second copy of the model: the host's own weights, made autograd-usable during
our forward only, give the same gradients as a copy, and the host's MODEL (handed to later prompts by
the graph cache) still samples exactly as before a training run."""
from __future__ import annotations

import importlib

import pytest
import torch

from tests.support.datasets import make_shapes_dataset


@pytest.fixture(scope="module")
def pack(comfy_host):
    for name in ("train.trainer", "data.load"):
        importlib.import_module(f"{comfy_host.pack.__name__}.hypernet.{name}")
    importlib.import_module(f"{comfy_host.pack.__name__}.nodes.train")
    return comfy_host.pack


def create(pack, name, sizes, seed=0):
    config = pack.hypernet.network.hypernetwork_config.HypernetworkConfig(name=name, sizes=sizes, seed=seed, activation_func="relu")
    with torch.inference_mode():
        network = pack.hypernet.network.module.Hypernetwork.create(config)
    return pack.hypernet.train.trainer.copy_network(network)


def host_tensors(model) -> dict:
    """name -> (tensor object, data pointer) of every weight and buffer of the host's model."""
    named = list(model.model.named_parameters()) + list(model.model.named_buffers())
    return {name: (tensor, tensor.data_ptr()) for name, tensor in named}


def assert_same_tensors(now: dict, before: dict) -> None:
    assert now.keys() == before.keys()
    for name, (tensor, pointer) in now.items():
        assert tensor is before[name][0] and pointer == before[name][1], f"the host's {name} was replaced"


def gradients(pack, model, clip, network_seed, *, copy_model, gradient_checkpointing=False, steps=2):
    """Per-parameter gradients of `steps` forward/backward passes (with an AdamW step between), in a
    fresh network made from `network_seed`; the same latents, timesteps and noise every time."""
    host, hn = pack.nodes.host, pack.hypernet
    widths = host.patches.attention_widths(model)
    network = create(pack, "grads", list(widths["self"] + widths["cross"]), seed=network_seed)
    with torch.inference_mode():
        cond, pooled = host.training.encode_prompt_for_training(clip, "a red circle")
    grads = []
    with torch.inference_mode(False), torch.enable_grad():
        network.train()
        optimizer = torch.optim.AdamW(list(network.parameters()), lr=1e-2)
        training_model = host.training.TrainingModel(model, hn.network.patch.HypernetworkPatch([(network, 1.0)]),
                                                     gradient_checkpointing, copy_model=copy_model)
        try:
            assert training_model.copied is copy_model
            batch_pooled = None if pooled is None else pooled.expand(2, -1)
            conds = training_model.conditioning(cond.expand(2, -1, -1), batch_pooled, 64, 64)
            for step in range(steps):
                optimizer.zero_grad(set_to_none=True)
                x0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(10 + step))
                prediction, target = training_model.prediction_and_target(
                    x0, conds, torch.Generator().manual_seed(step))
                torch.nn.functional.mse_loss(prediction, target).backward()
                grads.append({name: p.grad.clone() for name, p in network.named_parameters()})
                optimizer.step()
        finally:
            training_model.close()
    return grads


@pytest.mark.parametrize("kind, checkpointing", [("sd1", False), ("sd1", True), ("sdxl", False)])
def test_gradients_equal_the_copy_path(comfy_host, pack, kind, checkpointing):
    model, clip, _ = comfy_host.tiny.build_tiny(kind)
    copied = gradients(pack, model, clip, 3, copy_model=True, gradient_checkpointing=checkpointing)
    in_place = gradients(pack, model, clip, 3, copy_model=False, gradient_checkpointing=checkpointing)
    assert len(copied) == len(in_place) == 2
    for step, (a, b) in enumerate(zip(copied, in_place)):
        assert a.keys() == b.keys()
        assert any(g.abs().sum() > 0 for g in a.values())
        for name in a:
            assert torch.equal(a[name], b[name]), f"step {step}: gradient of {name} differs from the copy path"


def test_training_uses_the_hosts_weights_without_a_copy(comfy_host, pack):
    host, hn = pack.nodes.host, pack.hypernet
    model, clip, _ = comfy_host.tiny.build_tiny("sd1")
    before = host_tensors(model)
    assert all(t.is_inference() for t, _ in before.values()), "the tiny host model loads as a checkpoint does"
    network = create(pack, "no_copy", [32, 64, 768])
    with torch.inference_mode():
        cond, pooled = host.training.encode_prompt_for_training(clip, "x")
    with torch.inference_mode(False), torch.enable_grad():
        training_model = host.training.TrainingModel(model, hn.network.patch.HypernetworkPatch([(network, 1.0)]))
        try:
            assert training_model.base is model.model and training_model.copy_bytes == 0
            conds = training_model.conditioning(cond, pooled, 64, 64)
            prediction, target = training_model.prediction_and_target(torch.randn(1, 4, 8, 8), conds,
                                                                       torch.Generator().manual_seed(0))
            # Between our forward and its backward the host's module holds its own tensors again.
            assert_same_tensors(host_tensors(model), before)
            torch.nn.functional.mse_loss(prediction, target).backward()
        finally:
            training_model.close()
    assert all(p.grad is not None for p in network.parameters())
    after = host_tensors(model)
    assert_same_tensors(after, before)
    assert all(tensor.is_inference() for tensor, _ in after.values())


def test_a_weight_that_cannot_be_aliased_falls_back_to_a_copy(comfy_host, pack):
    """A tensor subclass (as quantized-weight packs use) is not aliased: the copy path is taken."""
    host = pack.nodes.host

    class Quantized(torch.Tensor):
        def __deepcopy__(self, memo):
            return self.detach().clone().as_subclass(Quantized)

    model, _, _ = comfy_host.tiny.build_tiny("sd1", seed=5, cached=False)
    assert not host.training.needs_model_copy(model)
    with torch.inference_mode():
        layer = model.model.diffusion_model.out[2]
        layer.weight = torch.nn.Parameter(layer.weight.detach().as_subclass(Quantized), requires_grad=False)
    assert host.training.needs_model_copy(model)
    with torch.inference_mode(False):
        training_model = host.training.TrainingModel(model, pack.hypernet.network.patch.HypernetworkPatch())
    try:
        assert training_model.copied and training_model.copy_bytes > 0 and training_model.base is not model.model
    finally:
        training_model.close()


def _sample(pack, model, clip, seed=7) -> torch.Tensor:
    host = pack.nodes.host
    with torch.inference_mode():
        positive = host.sampling.encode_prompt(clip, "a red circle")
        negative = host.sampling.encode_prompt(clip, "")
        latent = host.sampling.empty_latent(64, 64)
        return host.sampling.sample(model, seed, 3, 7.0, "euler", "normal", positive, negative, latent)["samples"].clone()


def _with_weight_patch(model, seed=0):
    """A clone with a LoRA-like weight patch ('diff') on two layers: the host applies it to the
    shared weights when the clone is loaded and restores them when another clone is."""
    patched = model.clone()
    names = [n for n, _ in model.model.named_parameters() if n.endswith("attn2.to_k.weight") or n.endswith("proj_in.weight")]
    gen = torch.Generator().manual_seed(seed)
    patches = {name: (torch.randn(dict(model.model.named_parameters())[name].shape, generator=gen) * 0.05,)
               for name in names[:2]}
    assert len(patched.add_patches(patches, 1.0)) == 2
    return patched


def test_host_model_samples_identically_after_a_training_run(comfy_host, pack, tmp_path):
    """The graph cache hands the same MODEL to later prompts: after the Train node ran on it (and on
    a LoRA-patched clone of it), sampling with either gives bit-identical latents."""
    model, clip, vae = comfy_host.tiny.build_tiny("sd1", seed=11, cached=False)
    weights = {k: v.clone() for k, v in model.model.state_dict().items()}
    lora = _with_weight_patch(model)
    before = {"lora": _sample(pack, lora, clip), "model": _sample(pack, model, clip)}
    assert not torch.equal(before["model"], before["lora"]), "the weight patch must change the samples"
    dataset = pack.hypernet.data.load.load_dataset(str(make_shapes_dataset(tmp_path / "shapes", count=2, size=64))).dataset
    node = pack.nodes.train.TrainHypernetwork()
    for index, trained_on in enumerate((lora, model)):
        with torch.inference_mode():  # the host runs every node in inference mode
            out = node.train(trained_on, clip, vae, dataset, "none", template="[filewords]", learning_rate="1e-2",
                             steps=2, batch_size=2, grad_accumulation_steps=1, seed=0, save_every=0, resume=False,
                             hypernetwork=create(pack, f"in_place_run{index}", [32, 64, 768]), preview_every=2,
                             preview_steps=1)
        assert "trained in place" in out["ui"]["text"][0]
        after = {"lora": _sample(pack, lora, clip), "model": _sample(pack, model, clip)}
        for name, sampled in after.items():
            assert torch.equal(sampled, before[name]), f"{name} samples differently after training on {index}"
        for name, value in model.model.state_dict().items():  # as the host left it after sampling `model`
            assert torch.equal(value, weights[name]), f"{name} changed after training"
