"""The Train node's options nodes: defaults as before the split, chaining, legacy inputs."""
from __future__ import annotations

import dataclasses
import importlib

import pytest


@pytest.fixture(scope="module")
def pack(comfy_host):
    importlib.import_module(f"{comfy_host.pack.__name__}.nodes.train")
    importlib.import_module(f"{comfy_host.pack.__name__}.nodes.train_options")
    return comfy_host.pack


def test_option_defaults_are_the_training_defaults(pack):
    options = pack.nodes.train_options.option_defaults()
    config = pack.hypernet.train.train_config.TrainConfig()
    preview = pack.hypernet.train.training_preview.PreviewSettings()
    declared = pack.hypernet.train.settings.BY_NAME
    checked = 0
    for name, default in options.items():
        setting = declared[name]
        if setting.store == "run":  # how the run behaves, not what it computes (not in the settings file)
            assert (name, default) == ("save_on_cancel", True)
            continue
        stored = config if setting.store == "config" else preview
        assert getattr(stored, setting.field) == default, name
        checked += 1
    assert checked == 38  # 22 training + 8 preview options as released, + 8 of issue 25
    assert getattr(config, "weight_decay") == options["adamw_weight_decay"]
    assert (preview.prompt, preview.steps, preview.cfg, preview.sampler) == ("", 20, 7.0, "euler")


def test_train_node_widget_defaults_are_the_training_defaults(pack):
    """The Train node's own widgets, and what an API prompt that leaves an optional input out gets."""
    spec = pack.nodes.train.TrainHypernetwork.INPUT_TYPES()
    config = pack.hypernet.train.train_config.TrainConfig()
    config_fields = {f.name for f in dataclasses.fields(config)}
    widgets = {name: s[1]["default"] for name, s in {**spec["required"], **spec["optional"]}.items()
               if len(s) > 1 and "default" in s[1] and name in config_fields}
    assert set(widgets) >= {"template", "learning_rate", "steps", "batch_size", "grad_accumulation_steps", "seed",
                            "save_every", "shuffle_tags", "tag_dropout", "latent_sampling"}
    assert widgets == {name: getattr(config, name) for name in widgets}
    given = {name: s[1]["default"] for name, s in spec["required"].items() if "default" in s[1]}
    filled = pack.nodes.train.own_inputs(given)
    assert {k: filled[k] for k in ("shuffle_tags", "tag_dropout", "latent_sampling")} == {
        "shuffle_tags": config.shuffle_tags, "tag_dropout": config.tag_dropout, "latent_sampling": config.latent_sampling}
    assert filled["overwrite"] is False and filled["settings_json"] == ""


def test_train_node_keeps_common_inputs_and_one_options_socket(pack):
    spec = pack.nodes.train.TrainHypernetwork.INPUT_TYPES()
    declared = set(spec["required"]) | set(spec["optional"])
    moved = pack.nodes.train_options.OPTION_NAMES
    assert not declared & moved
    assert spec["optional"]["options"][0] == "HN_TRAIN_OPTIONS"
    # old workflows store widget values by position: new inputs only ever go last
    assert list(spec["optional"])[-2:] == ["overwrite", "export_run_file"]
    widgets = [n for n, s in {**spec["required"], **spec["optional"]}.items()
               if isinstance(s[0], list) or s[0] in ("INT", "FLOAT", "STRING", "BOOLEAN")]
    assert len(widgets) <= 16, widgets


def test_options_nodes_chain_and_their_own_values_win(pack):
    opts = pack.nodes.train_options
    preview_node, training_node = opts.HypernetworkPreviewOptions(), opts.HypernetworkTrainingOptions()
    settings = pack.hypernet.train.settings
    preview_values = {s.name: s.default for s in settings.settings_of(settings.PREVIEW_OPTIONS)}
    training_values = {s.name: s.default for s in settings.settings_of(settings.TRAINING_OPTIONS)}
    (first,) = preview_node.options(**dict(preview_values, preview_every=7))
    (chained,) = training_node.options(options=first, **dict(training_values, loss_type="huber"))
    assert chained["preview_every"] == 7 and chained["loss_type"] == "huber"
    assert set(chained) == opts.OPTION_NAMES
    (again,) = preview_node.options(options=chained, **dict(preview_values, preview_every=3))
    assert again["preview_every"] == 3 and again["loss_type"] == "huber"
    with pytest.raises(ValueError, match="options"):
        training_node.options(options="not options", **training_values)
    required = opts.HypernetworkPreviewOptions.INPUT_TYPES()["required"]
    assert required["preview_seed_mode"][0] == ["fixed", "random"]
    assert "fixed" in required["preview_seed_mode"][1]["tooltip"]


def test_api_prompts_of_earlier_versions_still_set_the_moved_inputs(pack):
    train = pack.nodes.train
    prompt = {"7": {"class_type": "TrainHypernetwork", "inputs": {"preview_every": 5, "loss_type": "l1", "steps": 3}}}
    legacy = train.legacy_options(prompt, "7")
    assert legacy == {"preview_every": 5, "loss_type": "l1"}
    resolved = train.resolve_options(None, legacy)
    assert resolved["preview_every"] == 5 and resolved["loss_type"] == "l1" and resolved["rollback"] is True
    # the options socket wins over the old direct inputs, and the report says so
    assert train.resolve_options({"loss_type": "huber"}, legacy)["loss_type"] == "huber"
    assert train.overridden_settings({"loss_type": "huber", "preview_every": 5}, legacy) == [
        "loss_type 'l1' given to Train Hypernetwork directly is overridden by the options node's 'huber'"]
    assert train.overridden_settings(None, legacy) == []
    linked = {"7": {"class_type": "TrainHypernetwork", "inputs": {"preview_seed": ["3", 0]}}}
    with pytest.raises(ValueError, match="preview_seed.*Options"):
        train.legacy_options(linked, "7")
    with pytest.raises(TypeError, match="no_such_input"):
        train.resolve_options(None, {"no_such_input": 1})
