"""Every training setting, declared once.

One `Setting` per value a run can be given: its input name, default, type, range or choices,
widget extras, tooltip, which node shows it and where it is kept. Everything else is generated
from `SETTINGS`:

- the inputs of TrainHypernetwork, HypernetworkTrainingOptions and HypernetworkPreviewOptions
  (`nodes/train.py`, `nodes/train_options.py`), in declaration order: saved workflows store
  widget values by position, so never reorder, only append;
- the fields of `TrainConfig` (`store="config"`: saved in training_settings.json under `key`) and
  `PreviewSettings` (`store="preview"`), and their validation (`check_value`);
- the layouts the frontend migrates old Train nodes from (`LEGACY_TRAIN_LAYOUTS`, served to
  `web/trainLayout.js`).

Adding a training option = one `Setting` here + the code that uses it (e.g. `config.<key>` in the
trainer). Pure Python: the host's sampler list is named by `HOST_SAMPLERS` and filled in by `nodes/`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable, Iterable, Mapping

TRAIN = "TrainHypernetwork"
TRAINING_OPTIONS = "HypernetworkTrainingOptions"
PREVIEW_OPTIONS = "HypernetworkPreviewOptions"
OPTIONS_NODES = (TRAINING_OPTIONS, PREVIEW_OPTIONS)

HOST_SAMPLERS = "host sampler names"  # choices only the host knows (comfy.samplers.KSampler.SAMPLERS)
HostChoices = Mapping[str, Callable[[], list[str]]]  # e.g. {HOST_SAMPLERS: bridge.sampler_names}

CLIP_GRAD_MODES = ("none", "value", "norm")
LATENT_SAMPLING = ("once", "deterministic", "random")
TRAINING_DTYPES = ("fp32", "bf16", "fp16")
LOSS_TYPES = ("mse", "l1", "huber")
SCHEDULERS = ("a1111", "cosine_restarts")
PREVIEW_SEED_MODES = ("fixed", "random")
MAX_SEED = 2**64 - 1

WIDGET_KINDS = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


@dataclass(frozen=True)
class Setting:
    """One training setting. `name` is the input name and the options-dict key; `key` the field
    name in TrainConfig/PreviewSettings (and the settings file) when it differs."""

    name: str
    kind: str  # one of WIDGET_KINDS
    default: Any
    tooltip: str
    node: str | None  # TRAIN, TRAINING_OPTIONS, PREVIEW_OPTIONS, or None (settings file only)
    store: str = "config"  # "config" (TrainConfig, saved), "preview" (PreviewSettings), "run" (Train only)
    key: str = ""
    choices: tuple[str, ...] | str = ()  # COMBO: the choices, or HOST_SAMPLERS
    min: float | None = None
    max: float | None = None
    step: float | None = None  # the widget's increment (FLOAT)
    multiline: bool = False
    optional: bool = False  # Train only: listed under "optional" (after the sockets there)

    @property
    def field(self) -> str:
        return self.key or self.name

    @property
    def python_type(self) -> type:
        return {"INT": int, "FLOAT": float, "BOOLEAN": bool}.get(self.kind, str)

    def allowed(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.kind == "BOOLEAN":
            return "must be true or false (a JSON boolean, not text)"
        if self.kind == "COMBO":
            if self.choices == HOST_SAMPLERS:
                return "must be one of the host's sampler names, e.g. 'euler'"
            if len(self.choices) > 12:
                return f"use one of the {len(self.choices)} listed choices, e.g. {', '.join(self.choices[:3])}"
            return f"use one of {', '.join(self.choices)}"
        if self.kind == "STRING":
            return "must be text"
        what = "a whole number" if self.kind == "INT" else "a finite number"
        if self.min is not None and self.max is not None:
            return f"must be {what} from {_number(self.min)} to {_number(self.max)}"
        if self.min is not None:
            return f"must be {what} >= {_number(self.min)}"
        return f"must be {what}"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _settings(*rows: Setting) -> tuple[Setting, ...]:
    return rows


SETTINGS: tuple[Setting, ...] = _settings(
    # ---- TrainHypernetwork (required, in widget order)
    Setting("template", "STRING", "[filewords], [name]",
            "Prompt template, one line per variant: [filewords] = the caption, [name] = the hypernetwork name "
            "(A1111).", TRAIN, multiline=True),
    Setting("learning_rate", "STRING", "1e-5",
            "A1111 schedule: '5e-6:12000, 5e-7:30000' (rate until step), or one rate. Training ends where the "
            "schedule ends.", TRAIN),
    Setting("steps", "INT", 1000, "Maximum optimizer steps in total.", TRAIN, min=1, max=10_000_000),
    Setting("batch_size", "INT", 1, "Images per micro-batch (always of one size/bucket).", TRAIN, min=1, max=256),
    Setting("grad_accumulation_steps", "INT", 1, "Micro-batches summed into one optimizer step.", TRAIN,
            min=1, max=1024),
    Setting("seed", "INT", 0, "Seeds batch order, noise, timesteps and tag shuffling (resume-exact).", TRAIN,
            min=0, max=MAX_SEED),
    Setting("save_every", "INT", 100, "Write <name>-<step>.pt + .optim every N steps (0 = only at the end).",
            TRAIN, min=0, max=1_000_000),
    Setting("resume", "BOOLEAN", True, "Continue from the newest matching checkpoint of this name, if any.",
            TRAIN, store="run"),
    # ---- TrainHypernetwork (optional, after the hypernetwork and options sockets)
    Setting("shuffle_tags", "BOOLEAN", False, "Shuffle the caption's comma-separated tags each use.", TRAIN,
            optional=True),
    Setting("tag_dropout", "FLOAT", 0.0, "Probability of dropping each tag each use.", TRAIN, min=0.0, max=1.0,
            step=0.05, optional=True),
    Setting("latent_sampling", "COMBO", "once",
            "once: one VAE sample per image; deterministic: the mean; random: a new sample every step.", TRAIN,
            choices=LATENT_SAMPLING, optional=True),
    Setting("settings_json", "STRING", "",
            "Optional preset: a training_settings.json from an earlier run; its values replace the inputs above.",
            TRAIN, store="run", multiline=True, optional=True),
    # Keep last: old workflows store widget values by position.
    Setting("overwrite", "BOOLEAN", False,
            "Let the final models/hypernetworks/<name>.pt replace an existing file that this training did not "
            "write. Off: such a file is never replaced.", TRAIN, store="run", optional=True),
    Setting("export_run_file", "BOOLEAN", False,
            "Write this run as a run file (output/hypernetwork_runs/) for the headless multi-GPU runner "
            "(scripts/train_run.py) instead of training: nothing is trained while this is on.", TRAIN,
            store="run", optional=True),
    # ---- HypernetworkTrainingOptions
    Setting("clip_grad_mode", "COMBO", "none", "Gradient clipping (after unscaling).", TRAINING_OPTIONS,
            choices=CLIP_GRAD_MODES),
    Setting("clip_grad_value", "STRING", "0.1", "Clip value; schedule syntax allowed.", TRAINING_OPTIONS),
    Setting("adamw_weight_decay", "FLOAT", 0.01, "AdamW weight decay (torch's default, what A1111 used).",
            TRAINING_OPTIONS, key="weight_decay", min=0.0, max=0.99, step=0.001),
    Setting("adamw_beta1", "FLOAT", 0.9, "AdamW beta1.", TRAINING_OPTIONS, min=0.0, max=0.9999, step=0.001),
    Setting("adamw_beta2", "FLOAT", 0.999, "AdamW beta2.", TRAINING_OPTIONS, min=0.0, max=0.99999, step=0.0001),
    Setting("adamw_eps", "FLOAT", 1e-8, "AdamW epsilon.", TRAINING_OPTIONS, min=1e-12, max=1e-2, step=1e-9),
    Setting("training_dtype", "COMBO", "fp32",
            "Autocast dtype for the model forward; the hypernetwork itself always stays fp32.", TRAINING_OPTIONS,
            choices=TRAINING_DTYPES),
    Setting("gradient_checkpointing", "BOOLEAN", False, "Recompute transformer blocks in backward: less memory.",
            TRAINING_OPTIONS),
    Setting("clip_skip", "INT", 1, "1 = last CLIP layer (A1111 default).", TRAINING_OPTIONS, min=1, max=12),
    Setting("loss_type", "COMBO", "mse", "mse (A1111), l1 or huber.", TRAINING_OPTIONS, choices=LOSS_TYPES),
    Setting("huber_delta", "FLOAT", 0.1, "huber loss: where it turns from quadratic to linear.", TRAINING_OPTIONS,
            min=1e-4, max=10.0, step=0.01),
    Setting("scheduler", "COMBO", "a1111",
            "a1111: the schedule string; cosine_restarts: MonkeyPatch's cosine annealing with warm restarts from "
            "its first rate.", TRAINING_OPTIONS, choices=SCHEDULERS),
    Setting("cosine_cycle_steps", "INT", 64, "cosine_restarts: steps in the first cycle.", TRAINING_OPTIONS,
            min=1, max=1_000_000),
    Setting("cosine_cycle_mult", "FLOAT", 1.0, "cosine_restarts: each cycle is this much longer than the last.",
            TRAINING_OPTIONS, min=1.0, max=10.0, step=0.1),
    Setting("cosine_warmup_steps", "INT", 5, "cosine_restarts: linear warm-up steps at the start of each cycle.",
            TRAINING_OPTIONS, min=0, max=100_000),
    Setting("cosine_min_lr", "FLOAT", 6e-7, "cosine_restarts: the lowest learning rate of a cycle.",
            TRAINING_OPTIONS, min=1e-12, max=1.0, step=1e-7),
    Setting("cosine_gamma", "FLOAT", 1.0, "cosine_restarts: the peak rate is multiplied by this each cycle.",
            TRAINING_OPTIONS, min=0.01, max=1.0, step=0.01),
    Setting("save_at_cycle_end", "BOOLEAN", False,
            "cosine_restarts: also save and preview at the end of every cycle.", TRAINING_OPTIONS),
    Setting("timestep_curriculum", "BOOLEAN", False,
            "Sample timesteps up to a maximum that rises through each cycle (the whole run for the a1111 "
            "scheduler).", TRAINING_OPTIONS),
    Setting("rollback", "BOOLEAN", True,
            "On divergence or repeated NaN, go back to the last checkpoint with a lower learning rate.",
            TRAINING_OPTIONS),
    Setting("rollback_lr_factor", "FLOAT", 0.1, "Learning-rate multiplier applied at each rollback.",
            TRAINING_OPTIONS, min=0.001, max=0.99, step=0.01),
    Setting("max_rollbacks", "INT", 3, "Stop after this many rollbacks.", TRAINING_OPTIONS, min=0, max=100),
    # Judging a run (issue 25): appended after the released options, so saved widget values keep their places.
    Setting("validation_images", "STRING", "0",
            "Hold out this many images (4) or this share of them (10%), picked by the seed and never trained on; "
            "their loss (val_loss) is computed at every save and every validate_every steps. 0 = off.",
            TRAINING_OPTIONS),
    Setting("validate_every", "INT", 0, "Also compute the validation loss every N steps (0 = only at each save).",
            TRAINING_OPTIONS, min=0, max=1_000_000),
    Setting("stop_after_no_improvement", "INT", 0,
            "Stop when this many validations in a row found no new lowest validation loss (0 = never). Needs "
            "validation_images.", TRAINING_OPTIONS, min=0, max=10_000),
    Setting("ema_decay", "FLOAT", 0.0,
            "Keep an exponential moving average of the weights (0.999 typical; 0 = off), validated beside the raw "
            "weights and saved as <name>-<step>-ema.pt.", TRAINING_OPTIONS, min=0.0, max=0.99999, step=0.0001),
    Setting("min_snr_gamma", "FLOAT", 0.0,
            "Min-SNR loss weighting (Hang et al. 2023; 5 in the paper; 0 = off): eases the low-noise timesteps, "
            "for eps and v-prediction models.", TRAINING_OPTIONS, min=0.0, max=100.0, step=0.5),
    Setting("noise_offset", "FLOAT", 0.0,
            "Offset noise (0.05-0.1 typical; 0 = off): lets the network change an image's overall brightness.",
            TRAINING_OPTIONS, min=0.0, max=1.0, step=0.01),
    Setting("alpha_loss_weight", "BOOLEAN", False,
            "A1111's 'Use PNG alpha channel as loss weight': transparent pixels count less (alpha 0: not at all); "
            "images without alpha count fully.", TRAINING_OPTIONS),
    Setting("latent_disk_cache", "BOOLEAN", True,
            "Keep the images' VAE latents in ComfyUI's user/hypernetwork_latent_cache folder, so later runs on "
            "the same images, crops and VAE skip encoding (bounded in size; safe to delete).", TRAINING_OPTIONS),
    # ---- HypernetworkPreviewOptions
    Setting("preview_every", "INT", 0, "Render a preview every N steps (0 = off).", PREVIEW_OPTIONS,
            min=0, max=1_000_000),
    Setting("preview_prompt", "STRING", "",
            "Preview prompt (empty = the training template filled for the first image, as A1111 does).",
            PREVIEW_OPTIONS, store="preview", key="prompt", multiline=True),
    Setting("preview_negative", "STRING", "", "Preview negative prompt.", PREVIEW_OPTIONS, store="preview",
            key="negative", multiline=True),
    Setting("preview_seed", "INT", 0, "Preview seed.", PREVIEW_OPTIONS, store="preview", key="seed",
            min=0, max=MAX_SEED),
    Setting("preview_seed_mode", "COMBO", "fixed",
            "fixed: every preview uses preview_seed, so previews compare across steps; random: a new seed per "
            "preview (A1111's -1).", PREVIEW_OPTIONS, choices=PREVIEW_SEED_MODES),
    Setting("preview_steps", "INT", 20, "Preview sampling steps.", PREVIEW_OPTIONS, store="preview", key="steps",
            min=1, max=200),
    Setting("preview_cfg", "FLOAT", 7.0, "Preview CFG.", PREVIEW_OPTIONS, store="preview", key="cfg",
            min=0.0, max=100.0, step=0.1),
    Setting("preview_sampler", "COMBO", "euler", "Preview sampler.", PREVIEW_OPTIONS, store="preview",
            key="sampler", choices=HOST_SAMPLERS),
    # ---- only in a settings file (no widget)
    Setting("preview_scheduler", "COMBO", "normal", "The preview's noise schedule.", None, store="preview",
            key="scheduler", choices=("normal",)),
    Setting("keep_tokens", "INT", 0, "Leading tags that shuffle and dropout never touch.", None, min=0, max=1000),
    Setting("curriculum_start", "FLOAT", 0.25,
            "Timestep curriculum: the largest timestep starts at this fraction of 1000.", None, min=0.001, max=1.0),
    Setting("divergence_factor", "FLOAT", 4.0, "Divergence: loss this many times its running baseline.", None,
            min=1.0, max=1e6),
    Setting("divergence_window", "INT", 8, "Divergence: steps the loss must stay high.", None, min=1, max=100_000),
    Setting("max_weight_norm", "FLOAT", 1e4, "Divergence: the network's weight norm may not exceed this.", None,
            min=1e-6, max=1e12),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
OPTION_NAMES: frozenset[str] = frozenset(s.name for s in SETTINGS if s.node in OPTIONS_NODES)

# TrainHypernetwork's widget values (by position) in versions that had every setting on the Train
# node; `web/trainLayout.js` migrates them. Names are Train's own inputs or declared settings.
CONTROL_AFTER_GENERATE = "control_after_generate"
_LAYOUT_0_1 = (
    "hypernetwork_name", "template", "learning_rate", "steps", "batch_size", "grad_accumulation_steps", "seed",
    CONTROL_AFTER_GENERATE, "save_every", "resume", "clip_grad_mode", "clip_grad_value", "shuffle_tags",
    "tag_dropout", "latent_sampling", "preview_every", "preview_prompt", "preview_negative", "preview_seed",
    "preview_steps", "preview_cfg", "preview_sampler", "adamw_weight_decay", "adamw_beta1", "adamw_beta2",
    "adamw_eps", "training_dtype", "gradient_checkpointing", "clip_skip", "loss_type", "scheduler",
    "cosine_cycle_steps", "cosine_cycle_mult", "cosine_warmup_steps", "cosine_min_lr", "cosine_gamma",
    "save_at_cycle_end", "timestep_curriculum", "huber_delta", "rollback", "rollback_lr_factor", "max_rollbacks",
    "settings_json")
LEGACY_TRAIN_LAYOUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pack 0.1 (43 values)", _LAYOUT_0_1),
    ("pack 0.2 (44 values)", _LAYOUT_0_1 + ("overwrite",)),  # `overwrite` added as the last optional input
)


def settings_of(node: str) -> list[Setting]:
    """The settings a node shows, in widget order."""
    return [s for s in SETTINGS if s.node == node]


def input_spec(setting: Setting, host_choices: HostChoices | None = None) -> tuple:
    """The ComfyUI input declaration `(type, {default, tooltip, ...})` of a setting."""
    kind: Any = setting.kind
    if kind == "COMBO":
        if isinstance(setting.choices, str):
            if not host_choices or setting.choices not in host_choices:
                raise ValueError(f"{setting.name}: the host must provide the choices ({setting.choices})")
            kind = list(host_choices[setting.choices]())
        else:
            kind = list(setting.choices)
    extras: dict[str, Any] = {"default": setting.default}
    for name in ("min", "max", "step"):
        value = getattr(setting, name)
        if value is not None:
            extras[name] = value
    if setting.multiline:
        extras["multiline"] = True
    extras["tooltip"] = setting.tooltip
    return (kind, extras)


def check_value(setting: Setting, value: Any, label: str | None = None, host_choices: HostChoices | None = None) -> Any:
    """`value` if it is valid for `setting`, else a ValueError naming the field (`label`, default
    the input name), the value and what is allowed. A string "false" is not a boolean, "7" is not a
    number, NaN and infinities are not numbers, and ranges are inclusive."""
    label = label or setting.name
    kind = setting.kind
    if kind == "BOOLEAN":
        ok = isinstance(value, bool)
    elif kind == "INT":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "FLOAT":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "COMBO" and not isinstance(setting.choices, str):
        ok = not isinstance(value, bool) and value in setting.choices
    else:
        ok = isinstance(value, str)
    if ok and kind in ("INT", "FLOAT"):
        ok = (setting.min is None or value >= setting.min) and (setting.max is None or value <= setting.max)
    if ok and kind == "COMBO" and isinstance(setting.choices, str):
        known = (host_choices or {}).get(setting.choices)
        ok = value in known() if known is not None else bool(value) and len(value) < 200
    if not ok:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"{label}: {shown} is invalid; {setting.allowed()}")
    return value


def setting_from_input(name: str, spec: Any) -> Setting | None:
    """Any node's widget input `(type, {min, max, ...})` as a Setting, so that `check_value` checks
    it by the same rules; None for sockets (MODEL, ...) and malformed declarations."""
    if not isinstance(spec, (tuple, list)) or not spec:
        return None
    kind, extras = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if isinstance(kind, (list, tuple)):
        return Setting(name, "COMBO", extras.get("default"), "", None, choices=tuple(kind))
    if kind not in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        return None
    return Setting(name, kind, extras.get("default"), "", None, min=extras.get("min"), max=extras.get("max"))


def check_options(values: Mapping[str, Any], host_choices: HostChoices | None = None,
                  source: str = "options") -> dict[str, Any]:
    """Validate a dict of settings by input name (an options socket, old-layout inputs)."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: expected settings from an options node, got {type(values).__name__}")
    unknown = sorted(str(name) for name in values if name not in BY_NAME)
    if unknown:
        raise ValueError(f"{source}: unknown settings {unknown}")
    return {name: check_value(BY_NAME[name], value, host_choices=host_choices) for name, value in values.items()}


def defaults(names: Iterable[str] | None = None) -> dict[str, Any]:
    """Default values by input name (all settings, or the given names)."""
    wanted = set(names) if names is not None else None
    return {s.name: s.default for s in SETTINGS if wanted is None or s.name in wanted}


def values_for(store: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` (by input name) that belong to `store`, keyed by field name."""
    return {s.field: values[s.name] for s in SETTINGS if s.store == store and s.name in values}


def make_settings_class(name: str, store: str, doc: str, module: str, base: type = object) -> type:
    """A frozen dataclass with one field per setting of `store` (declaration order), validated by
    `check_value` before `base.__post_init__` (if any) runs; `base` holds the methods."""
    declared = [s for s in SETTINGS if s.store == store]
    spec = [(s.field, s.python_type, field(default=s.default, metadata={"setting": s})) for s in declared]

    def __post_init__(self) -> None:
        for setting in declared:
            check_value(setting, getattr(self, setting.field), label=setting.field)
        if hasattr(base, "__post_init__"):
            base.__post_init__(self)

    cls = make_dataclass(name, spec, bases=(base,), frozen=True, namespace={"__post_init__": __post_init__})
    cls.__doc__ = doc
    cls.__module__ = module
    return cls


def layout_document() -> dict[str, Any]:
    """What the frontend needs to migrate old Train nodes: the legacy layouts and which node
    shows each setting now."""
    return {"legacy_layouts": [{"name": name, "widgets": list(widgets)} for name, widgets in LEGACY_TRAIN_LAYOUTS],
            "nodes": {node: [s.name for s in settings_of(node)] for node in (TRAIN, *OPTIONS_NODES)}}
