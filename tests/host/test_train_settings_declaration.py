"""The Train and options nodes' inputs are generated from one declaration (hypernet/train/settings.py)
and keep the layout saved workflows depend on (widget values are stored by position)."""
from __future__ import annotations

import importlib

import pytest

MAX_SEED = 0xFFFFFFFFFFFFFFFF
# The inputs as released (pack 0.3): name, type (COMBO = a list of choices), widget extras without
# the tooltip. Saved workflows store widget values by position: a change here breaks them; a new
# input goes after these.
RELEASED = {
    ("TrainHypernetwork", "required"): [
        ("model", "MODEL", {}), ("clip", "CLIP", {}), ("vae", "VAE", {}), ("dataset", "HN_DATASET", {}),
        ("hypernetwork_name", "COMBO", {}),
        ("template", "STRING", {"default": "[filewords], [name]", "multiline": True}),
        ("learning_rate", "STRING", {"default": "1e-5"}),
        ("steps", "INT", {"default": 1000, "min": 1, "max": 10000000}),
        ("batch_size", "INT", {"default": 1, "min": 1, "max": 256}),
        ("grad_accumulation_steps", "INT", {"default": 1, "min": 1, "max": 1024}),
        ("seed", "INT", {"default": 0, "min": 0, "max": MAX_SEED}),
        ("save_every", "INT", {"default": 100, "min": 0, "max": 1000000}),
        ("resume", "BOOLEAN", {"default": True}),
    ],
    ("TrainHypernetwork", "optional"): [
        ("hypernetwork", "HYPERNETWORK", {}), ("options", "HN_TRAIN_OPTIONS", {}),
        ("shuffle_tags", "BOOLEAN", {"default": False}),
        ("tag_dropout", "FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05}),
        ("latent_sampling", ["once", "deterministic", "random"], {"default": "once"}),
        ("settings_json", "STRING", {"default": "", "multiline": True}),
        ("overwrite", "BOOLEAN", {"default": False}),
    ],
    ("HypernetworkTrainingOptions", "required"): [
        ("clip_grad_mode", ["none", "value", "norm"], {"default": "none"}),
        ("clip_grad_value", "STRING", {"default": "0.1"}),
        ("adamw_weight_decay", "FLOAT", {"default": 0.01, "min": 0.0, "max": 0.99, "step": 0.001}),
        ("adamw_beta1", "FLOAT", {"default": 0.9, "min": 0.0, "max": 0.9999, "step": 0.001}),
        ("adamw_beta2", "FLOAT", {"default": 0.999, "min": 0.0, "max": 0.99999, "step": 0.0001}),
        ("adamw_eps", "FLOAT", {"default": 1e-08, "min": 1e-12, "max": 0.01, "step": 1e-09}),
        # "auto" added and made the default for new nodes (saved nodes keep their stored value)
        ("training_dtype", ["auto", "fp32", "bf16", "fp16"], {"default": "auto"}),
        ("gradient_checkpointing", "BOOLEAN", {"default": False}),
        ("clip_skip", "INT", {"default": 1, "min": 1, "max": 12}),
        ("loss_type", ["mse", "l1", "huber"], {"default": "mse"}),
        ("huber_delta", "FLOAT", {"default": 0.1, "min": 0.0001, "max": 10.0, "step": 0.01}),
        ("scheduler", ["a1111", "cosine_restarts"], {"default": "a1111"}),
        ("cosine_cycle_steps", "INT", {"default": 64, "min": 1, "max": 1000000}),
        ("cosine_cycle_mult", "FLOAT", {"default": 1.0, "min": 1.0, "max": 10.0, "step": 0.1}),
        ("cosine_warmup_steps", "INT", {"default": 5, "min": 0, "max": 100000}),
        ("cosine_min_lr", "FLOAT", {"default": 6e-07, "min": 1e-12, "max": 1.0, "step": 1e-07}),
        ("cosine_gamma", "FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01}),
        ("save_at_cycle_end", "BOOLEAN", {"default": False}),
        ("timestep_curriculum", "BOOLEAN", {"default": False}),
        ("rollback", "BOOLEAN", {"default": True}),
        ("rollback_lr_factor", "FLOAT", {"default": 0.1, "min": 0.001, "max": 0.99, "step": 0.01}),
        ("max_rollbacks", "INT", {"default": 3, "min": 0, "max": 100}),
    ],
    ("HypernetworkTrainingOptions", "optional"): [("options", "HN_TRAIN_OPTIONS", {})],
    ("HypernetworkPreviewOptions", "required"): [
        ("preview_every", "INT", {"default": 0, "min": 0, "max": 1000000}),
        ("preview_prompt", "STRING", {"default": "", "multiline": True}),
        ("preview_negative", "STRING", {"default": "", "multiline": True}),
        ("preview_seed", "INT", {"default": 0, "min": 0, "max": MAX_SEED}),
        ("preview_seed_mode", ["fixed", "random"], {"default": "fixed"}),
        ("preview_steps", "INT", {"default": 20, "min": 1, "max": 200}),
        ("preview_cfg", "FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1}),
        ("preview_sampler", "SAMPLERS", {"default": "euler"}),
    ],
    ("HypernetworkPreviewOptions", "optional"): [("options", "HN_TRAIN_OPTIONS", {})],
}
NODES = ("TrainHypernetwork", "HypernetworkTrainingOptions", "HypernetworkPreviewOptions")


@pytest.fixture(scope="module")
def pack(comfy_host):
    for module in ("train", "train_options", "host.sampling"):
        importlib.import_module(f"{comfy_host.pack.__name__}.nodes.{module}")
    return comfy_host.pack


def node_class(pack, node: str) -> type:
    return getattr(pack.nodes.train if node == "TrainHypernetwork" else pack.nodes.train_options, node)


def released_shape(pack, kind):
    """A list of choices as released: the host's samplers for the preview sampler, any list for a
    file combo, the exact list otherwise."""
    if kind == "SAMPLERS":
        return pack.nodes.host.sampling.sampler_names()
    return kind


@pytest.mark.parametrize("node,category", sorted(RELEASED))
def test_inputs_keep_their_released_names_order_types_and_defaults(pack, node, category):
    spec = node_class(pack, node).INPUT_TYPES()[category]
    released = [name for name, _, _ in RELEASED[(node, category)]]
    # new inputs may only be appended: a saved workflow's values then still land on the same widgets
    assert list(spec)[:len(released)] == released
    for name, kind, extras in RELEASED[(node, category)]:
        declared = spec[name]
        if kind == "COMBO":
            assert isinstance(declared[0], list), name
        else:
            assert declared[0] == released_shape(pack, kind), name
        got = {k: v for k, v in (declared[1] if len(declared) > 1 else {}).items() if k != "tooltip"}
        assert got == extras, name
        assert declared[1].get("tooltip"), f"{node}.{name} has no tooltip"


@pytest.mark.parametrize("node", NODES)
def test_every_widget_input_is_its_declared_setting(pack, node):
    """A Train/options input and its declaration must agree: same names in the same order, and
    each input exactly what the declaration generates (an input added or edited by hand fails)."""
    settings = pack.hypernet.train.settings
    spec = node_class(pack, node).INPUT_TYPES()
    inputs = {**spec["required"], **spec["optional"]}
    widgets = [name for name, s in inputs.items()
               if isinstance(s[0], list) or s[0] in ("INT", "FLOAT", "STRING", "BOOLEAN")]
    declared = settings.settings_of(node)
    own_widgets = [name for name in widgets if name != "hypernetwork_name"]  # a file list, not a setting
    assert own_widgets == [s.name for s in declared]
    for setting in declared:
        kind, extras = inputs[setting.name]
        generated = settings.input_spec(setting, pack.nodes.train_options.HOST_CHOICES)
        assert (kind, extras) == generated, setting.name
        assert (setting.name in spec["optional"]) == (node == "TrainHypernetwork" and setting.optional)
        assert extras["default"] == setting.default
        if setting.kind in ("INT", "FLOAT"):
            assert (extras.get("min"), extras.get("max")) == (setting.min, setting.max)


def test_the_legacy_layouts_name_only_known_inputs_and_are_served_to_the_frontend(pack):
    settings = pack.hypernet.train.settings
    train_inputs = set(pack.nodes.train.TrainHypernetwork.INPUT_TYPES()["required"])
    for name, widgets in settings.LEGACY_TRAIN_LAYOUTS:
        unknown = set(widgets) - set(settings.BY_NAME) - train_inputs - {settings.CONTROL_AFTER_GENERATE}
        assert not unknown, (name, unknown)
    assert [len(w) for _, w in settings.LEGACY_TRAIN_LAYOUTS] == [43, 44]
    document = settings.layout_document()
    assert document["legacy_layouts"][1]["widgets"][-1] == "overwrite"
    assert document["nodes"]["HypernetworkPreviewOptions"][0] == "preview_every"
