"""The training settings declaration (hypernet/train/settings.py): one entry per setting generates
TrainConfig/PreviewSettings and their checks; the settings file keeps its keys; schedules are
parsed once, into the config."""
from __future__ import annotations

import json
import math

import pytest

from hypernet.train import train_config as config_module
from hypernet.train import schedule as schedule_module
from hypernet.train import settings
from hypernet.train.train_config import TrainConfig, preset_from_json
from hypernet.train.training_preview import PreviewSettings
from hypernet.train.schedule import CosineRestarts, StepSchedule

# training_settings.json's "config" as every earlier version wrote it (key -> default; the default
# training_dtype became "auto", files that say "fp32" keep it)
RELEASED_FILE_DEFAULTS = {
    "learning_rate": "1e-5", "steps": 1000, "batch_size": 1, "grad_accumulation_steps": 1, "clip_grad_mode": "none",
    "clip_grad_value": "0.1", "template": "[filewords], [name]", "shuffle_tags": False, "tag_dropout": 0.0,
    "keep_tokens": 0, "latent_sampling": "once", "seed": 0, "save_every": 100, "preview_every": 0,
    "preview_seed_mode": "fixed", "adamw_beta1": 0.9, "adamw_beta2": 0.999, "adamw_eps": 1e-8,
    "weight_decay": 0.01, "training_dtype": "auto", "gradient_checkpointing": False, "clip_skip": 1,
    "loss_type": "mse", "huber_delta": 0.1, "scheduler": "a1111", "cosine_cycle_steps": 64, "cosine_cycle_mult": 1.0,
    "cosine_warmup_steps": 5, "cosine_min_lr": 6e-7, "cosine_gamma": 1.0, "save_at_cycle_end": False,
    "timestep_curriculum": False, "curriculum_start": 0.25, "rollback": True, "rollback_lr_factor": 0.1,
    "max_rollbacks": 3, "divergence_factor": 4.0, "divergence_window": 8, "max_weight_norm": 1e4,
}


# keys added since (issue 25), with the defaults a file without them trains with
ADDED_FILE_DEFAULTS = {
    "validation_images": "0", "validate_every": 0, "stop_after_no_improvement": 0, "ema_decay": 0.0,
    "min_snr_gamma": 0.0, "noise_offset": 0.0, "alpha_loss_weight": False, "latent_disk_cache": True,
}


def test_the_settings_file_keeps_its_keys_and_defaults():
    assert TrainConfig().to_dict() == {**RELEASED_FILE_DEFAULTS, **ADDED_FILE_DEFAULTS}
    written = json.loads(json.dumps(TrainConfig(steps=7, weight_decay=0.02).to_dict()))
    assert set(written) == set(RELEASED_FILE_DEFAULTS) | set(ADDED_FILE_DEFAULTS) and written["weight_decay"] == 0.02
    assert TrainConfig.from_json(json.dumps({"config": written})) == TrainConfig(steps=7, weight_decay=0.02)
    released = dict(RELEASED_FILE_DEFAULTS, steps=7)  # a file of an earlier version: the new keys take defaults
    assert TrainConfig.from_json(json.dumps({"config": released})) == TrainConfig(steps=7)


def test_config_and_preview_fields_are_the_declared_settings():
    config_fields = [s.field for s in settings.SETTINGS if s.store == "config"]
    assert list(TrainConfig().to_dict()) == config_fields
    assert [s.field for s in settings.SETTINGS if s.store == "preview"] == [
        "prompt", "negative", "seed", "steps", "cfg", "sampler", "scheduler"]
    assert PreviewSettings().steps == 20 and PreviewSettings().scheduler == "normal"
    assert len({s.name for s in settings.SETTINGS}) == len(settings.SETTINGS), "input names are unique"
    assert len({(s.store, s.field) for s in settings.SETTINGS}) == len(settings.SETTINGS), "fields are unique"
    for setting in settings.SETTINGS:
        assert setting.kind in settings.WIDGET_KINDS and setting.tooltip.strip(), setting.name
        settings.check_value(setting, setting.default, host_choices={settings.HOST_SAMPLERS: lambda: ["euler"]})


@pytest.mark.parametrize("name,value,message", [
    ("overwrite", "false", "overwrite: 'false' is invalid; must be true or false"),
    ("rollback", 0, "must be true or false"),
    ("steps", "7", "must be a whole number from 1 to 10000000"),
    ("steps", 7.0, "whole number"),
    ("steps", True, "whole number"),
    ("steps", 0, "from 1 to 10000000"),
    ("preview_steps", 10**9, "preview_steps: 1000000000 is invalid; must be a whole number from 1 to 200"),
    ("preview_cfg", math.nan, "finite number from 0 to 100"),
    ("preview_cfg", math.inf, "finite number from 0 to 100"),
    ("preview_cfg", "7", "finite number"),
    ("latent_sampling", "twice", "use one of once, deterministic, random"),
    ("preview_sampler", "../../x", "sampler names"),
    ("template", 5, "must be text"),
])
def test_a_value_of_the_wrong_type_or_range_is_refused_naming_the_field(name, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.check_value(settings.BY_NAME[name], value, host_choices={settings.HOST_SAMPLERS: lambda: ["euler"]})


def test_valid_values_pass_and_ranges_are_inclusive():
    check = settings.check_value
    assert check(settings.BY_NAME["preview_steps"], 200) == 200
    assert check(settings.BY_NAME["preview_cfg"], 0) == 0
    assert check(settings.BY_NAME["seed"], 2**64 - 1) == 2**64 - 1
    assert check(settings.BY_NAME["preview_sampler"], "dpmpp_2m", host_choices={
        settings.HOST_SAMPLERS: lambda: ["euler", "dpmpp_2m"]}) == "dpmpp_2m"


def test_preview_settings_and_options_dicts_are_validated():
    with pytest.raises(ValueError, match="steps: 0 is invalid"):
        PreviewSettings(steps=0)
    with pytest.raises(ValueError, match="cfg"):
        PreviewSettings(cfg=math.nan)
    with pytest.raises(ValueError, match=r"options: unknown settings \['nope'\]"):
        settings.check_options({"nope": 1})
    with pytest.raises(ValueError, match="options: expected settings"):
        settings.check_options(["preview_steps", 3])
    assert settings.check_options({"preview_steps": 3}) == {"preview_steps": 3}


def test_a_preset_names_only_its_keys_and_each_is_checked():
    assert preset_from_json('{"batch_size": 2}') == {"batch_size": 2}
    assert preset_from_json(json.dumps({"config": {"steps": 3}, "network": {}})) == {"steps": 3}
    with pytest.raises(ValueError, match=r"settings_json: batch_size: 100000 is invalid; .*from 1 to 256"):
        preset_from_json('{"batch_size": 100000}')
    with pytest.raises(ValueError, match=r"unknown keys \['adamw_weight_decay'\]"):
        preset_from_json('{"adamw_weight_decay": 0.1}')  # the file key is weight_decay
    with pytest.raises(ValueError, match="not valid JSON"):
        preset_from_json("{")


def test_schedules_are_parsed_once_into_the_config(monkeypatch):
    config = TrainConfig(learning_rate="1e-2:3, 1e-3", steps=6, clip_grad_mode="norm", clip_grad_value="1.0:2, 0.5")
    assert isinstance(config.lr_schedule, StepSchedule) and config.lr_schedule.rate_at(4) == 1e-3
    assert config.clip_schedule.rate_at(0) == 1.0 and config.cosine is None
    assert TrainConfig(clip_grad_value="not a schedule").clip_schedule is None  # clipping off: not used
    cosine = TrainConfig(scheduler="cosine_restarts", learning_rate="1e-3")
    assert isinstance(cosine.cosine, CosineRestarts) and cosine.cosine.base_lr == 1e-3
    assert cosine == TrainConfig(scheduler="cosine_restarts", learning_rate="1e-3"), "parsed parts are not fields"
    assert "lr_schedule" not in cosine.to_dict()

    from hypernet.train.trainer import learning_rate_function, max_timestep_at

    def no_parsing(*args, **kwargs):
        raise AssertionError("a schedule string was parsed again")

    monkeypatch.setattr(schedule_module, "parse_schedule", no_parsing)
    monkeypatch.setattr(config_module, "parse_schedule", no_parsing)
    rate_at, end = learning_rate_function(config)
    assert (rate_at(0), end) == (1e-2, 6)
    assert max_timestep_at(cosine, 3, 64) <= 1000


def test_legacy_layouts_and_the_layout_document():
    names = set(settings.BY_NAME)
    for _, widgets in settings.LEGACY_TRAIN_LAYOUTS:
        assert set(widgets) - names <= {"hypernetwork_name", settings.CONTROL_AFTER_GENERATE}
    document = settings.layout_document()
    assert [len(layout["widgets"]) for layout in document["legacy_layouts"]] == [43, 44]
    assert document["nodes"][settings.TRAIN][:2] == ["template", "learning_rate"]


@pytest.mark.parametrize("choice,device,bf16,used", [
    ("auto", "cuda", True, "bf16"), ("auto", "cuda", False, "fp16"), ("auto", "cpu", False, "fp32"),
    ("auto", "mps", False, "fp32"), ("fp32", "cuda", True, "fp32"), ("fp16", "cuda", True, "fp16"),
    ("bf16", "cpu", False, "bf16"),
])
def test_auto_precision_resolves_by_device(choice, device, bf16, used):
    from hypernet.train.precision import resolve_training_dtype

    assert resolve_training_dtype(choice, device, bf16) == used


def test_a_saved_explicit_dtype_is_kept_and_new_configs_default_to_auto():
    assert TrainConfig().training_dtype == "auto"
    assert TrainConfig.from_json('{"config": {"training_dtype": "fp32"}}').training_dtype == "fp32"
    assert settings.BY_NAME["training_dtype"].choices[0] == "auto"


def test_widget_tooltips_say_more_than_the_name():
    """A newcomer's tooltip: what it does and when to change it, not the name again."""
    for setting in settings.SETTINGS:
        if setting.node is None:
            continue
        words = setting.tooltip.split()
        assert len(words) >= 6, (setting.name, setting.tooltip)
        assert setting.name.replace("_", " ").lower() not in setting.tooltip.lower()[:len(setting.name) + 2], setting.name
