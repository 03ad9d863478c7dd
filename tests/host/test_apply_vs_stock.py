"""Same file, two loaders: our ApplyHypernetwork and the host's stock HypernetworkLoader agree.

Runs the host in-process (its real modules, no mock) on the tiny SD1 model. Network weights are
made much larger than A1111's N(0, 0.01) init so that any difference in the math shows up.

Known stock difference (documented in README): for a layer-normed network the stock loader counts
the LayerNorm weights as layers and so also applies the activation after the *last* linear layer,
as if `activate_output` were on. A1111 (and this pack) do not. The layer-norm cases below
therefore use `activate_output=True`, where both agree; `test_stock_layer_norm_quirk` pins the
difference down so that we notice if the stock loader changes.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from tests.support.networks import loud_weights

STOCK_ACTIVATIONS = ["linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign", "mish"]
STRENGTHS = [0.0, 0.5, 1.0, -1.0]


@pytest.fixture(scope="module")
def tiny(comfy_host):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1", 0)
    nodes = comfy_host.nodes
    with torch.inference_mode():
        positive = nodes.CLIPTextEncode().encode(clip, "a photo of a cat")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    return model, positive, negative


def sample(comfy_host, model, positive, negative, seed=3, steps=2):
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    with torch.inference_mode():
        out = comfy_host.nodes.common_ksampler(model, seed, steps, 5.0, "euler", "normal",
                                               positive, negative, latent)[0]
    return out["samples"].clone()


def make_file(comfy_host, name, activation, layer_norm, seed=0, activate_output=None):
    hn = comfy_host.pack.hypernet
    if activate_output is None:
        activate_output = layer_norm and activation != "linear"
    config = hn.network.hypernetwork_config.HypernetworkConfig(name=name, layer_structure=[1, 2, 1], activation_func=activation,
                                          is_layer_norm=layer_norm, activate_output=activate_output,
                                          sizes=[768, 32, 64], seed=seed)
    network = hn.network.module.Hypernetwork.create(config)
    loud_weights(network, seed + 100)
    path = comfy_host.models_dir / "hypernetworks" / f"{name}.pt"
    hn.network.fileio.save_hypernetwork(network, path)
    return f"{name}.pt"


def ours(comfy_host, model, name, strength):
    return comfy_host.pack.nodes.apply.ApplyHypernetwork().apply(model, name, strength)[0]


def stock(comfy_host, model, name, strength):
    loader = comfy_host.nodes.NODE_CLASS_MAPPINGS["HypernetworkLoader"]()
    return loader.load_hypernetwork(model, name, strength)[0]


@pytest.mark.parametrize("activation,layer_norm", list(itertools.product(STOCK_ACTIVATIONS, [False, True])))
def test_same_latents_as_stock_loader(comfy_host, tiny, activation, layer_norm):
    model, positive, negative = tiny
    name = make_file(comfy_host, f"cmp_{activation}_{int(layer_norm)}", activation, layer_norm)
    plain = sample(comfy_host, model, positive, negative)
    for strength in STRENGTHS:
        a = sample(comfy_host, ours(comfy_host, model, name, strength), positive, negative)
        b = sample(comfy_host, stock(comfy_host, model, name, strength), positive, negative)
        assert (a - b).abs().max().item() <= 1e-5, f"strength {strength}"
        if strength == 0.0:
            assert torch.equal(a, plain), "strength 0 must equal the unpatched model"
        else:
            assert (a - plain).abs().max().item() > 1e-3, "the network had no visible effect"


def test_stacked_networks_equal_sequential_stock_application(comfy_host, tiny):
    model, positive, negative = tiny
    first = make_file(comfy_host, "stack_a", "relu", False, seed=1)
    second = make_file(comfy_host, "stack_b", "tanh", True, seed=2)
    stacked = ours(comfy_host, ours(comfy_host, model, first, 0.7), second, -0.4)
    reference = stock(comfy_host, stock(comfy_host, model, first, 0.7), second, -0.4)
    only_first = ours(comfy_host, model, first, 0.7)
    a = sample(comfy_host, stacked, positive, negative)
    assert (a - sample(comfy_host, reference, positive, negative)).abs().max().item() <= 1e-5
    assert (a - sample(comfy_host, only_first, positive, negative)).abs().max().item() > 1e-3


def test_apply_never_mutates_the_incoming_model(comfy_host, tiny):
    model, _, _ = tiny
    name = make_file(comfy_host, "no_mutation", "linear", False)
    before = {k: len(v) for k, v in model.model_options.get("transformer_options", {}).get("patches", {}).items()}
    patched = ours(comfy_host, model, name, 1.0)
    after = {k: len(v) for k, v in model.model_options.get("transformer_options", {}).get("patches", {}).items()}
    assert before == after
    assert patched is not model
    assert len(patched.model_options["transformer_options"]["patches"]["attn2_patch"]) == \
        before.get("attn2_patch", 0) + 1


def test_network_with_no_matching_width_is_an_error(comfy_host, tiny):
    hn = comfy_host.pack.hypernet
    model, _, _ = tiny
    config = hn.network.hypernetwork_config.HypernetworkConfig(name="sdxl_only", sizes=[2048, 1280])
    network = hn.network.module.Hypernetwork.create(config)
    with pytest.raises(ValueError, match="none match"):
        comfy_host.pack.nodes.apply.ApplyHypernetwork().apply(model, "none", 1.0, hypernetwork=network)


def test_stock_layer_norm_quirk(comfy_host, tiny):
    """Stock applies the activation after the last layer of layer-normed networks; we follow A1111."""
    import comfy_extras.nodes_hypernetwork as stock_module

    hn = comfy_host.pack.hypernet
    name = make_file(comfy_host, "quirk", "relu", True, activate_output=False)
    path = comfy_host.models_dir / "hypernetworks" / name
    stock_patch = stock_module.load_hypernetwork_patch(str(path), 1.0)
    stock_k = stock_patch.hypernet[32][0]
    assert isinstance(stock_k[-1], torch.nn.LayerNorm) and isinstance(stock_k[-2], torch.nn.ReLU)
    ours_k = hn.network.fileio.load_hypernetwork(path).pair(32)[0]
    assert not any(isinstance(m, torch.nn.ReLU) for m in list(ours_k.linear)[2:])


def test_dropout_networks_are_deterministic_here_and_random_in_the_stock_loader(comfy_host, tiny):
    """An A1111 file with use_dropout: stock ComfyUI leaves Dropout(0.3) active at inference (it
    never calls eval()), so two identical samplings differ; ours runs in eval mode and repeats."""
    hn = comfy_host.pack.hypernet
    model, positive, negative = tiny
    config = hn.network.hypernetwork_config.HypernetworkConfig(name="dropout_net", layer_structure=[1, 2, 2, 1], sizes=[768, 32, 64],
                                          use_dropout=True, dropout_structure=[0, 0.3, 0.3, 0])
    network = hn.network.module.Hypernetwork.create(config)
    loud_weights(network, 5)
    hn.network.fileio.save_pt(network, comfy_host.models_dir / "hypernetworks" / "dropout_net.pt", stock_safe_dropout=False)
    ours_a = sample(comfy_host, ours(comfy_host, model, "dropout_net.pt", 1.0), positive, negative)
    ours_b = sample(comfy_host, ours(comfy_host, model, "dropout_net.pt", 1.0), positive, negative)
    assert torch.equal(ours_a, ours_b)
    stock_model = stock(comfy_host, model, "dropout_net.pt", 1.0)
    # The host's sampler reseeds the global RNG from the seed, so two samplings repeat the same
    # dropout masks; call the stock patch directly under two seeds to see its dropout at work.
    stock_patch = stock_model.model_options["transformer_options"]["patches"]["attn2_patch"][0]
    context = torch.randn(1, 77, 768)
    torch.manual_seed(1)
    first = stock_patch(None, context, context, {})[1]
    torch.manual_seed(2)
    second = stock_patch(None, context, context, {})[1]
    assert not torch.equal(first, second), "stock ComfyUI is expected to keep dropout active"
    ours_patch = ours(comfy_host, model, "dropout_net.pt", 1.0).model_options["transformer_options"]["patches"][
        "attn2_patch"][-1]
    torch.manual_seed(1)
    mine_first = ours_patch(None, context, context, {})[1]
    torch.manual_seed(2)
    assert torch.equal(mine_first, ours_patch(None, context.clone(), context, {})[1])
    stock_a = sample(comfy_host, stock_model, positive, negative)
    assert (stock_a - ours_a).abs().max().item() > 1e-3
