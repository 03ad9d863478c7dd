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
HostChoices = Mapping[str, Callable[[], list[str]]]  # e.g. {HOST_SAMPLERS: sampling.sampler_names}

CLIP_GRAD_MODES = ("none", "value", "norm")
LATENT_SAMPLING = ("once", "deterministic", "random")
TRAINING_DTYPES = ("auto", "fp32", "bf16", "fp16")
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
    node: str | None  # TRAIN, TRAINING_OPTIONS, PREVIEW_OPTIONS, or None (settings file only)
    store: str = "config"  # "config" (TrainConfig, saved), "preview" (PreviewSettings), "run" (Train only)
    key: str = ""
    choices: tuple[str, ...] | str = ()  # COMBO: the choices, or HOST_SAMPLERS
    min: float | None = None
    max: float | None = None
    step: float | None = None  # the widget's increment (FLOAT)
    multiline: bool = False
    optional: bool = False  # Train only: listed under "optional" (after the sockets there)
    tooltip: str = ""  # what it does, when to change it (every widget setting has one; a test checks)

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
    Setting("template", "STRING", "[filewords], [name]", TRAIN, multiline=True,
            tooltip=("The prompt each training image is trained with, one line per variant (a line is picked per "
                     "image). [filewords] = the image's caption, [name] = the hypernetwork's name. For a style: "
                     "'art by [name], [filewords]'; to learn everything the captions do not describe: "
                     "'[filewords]' alone.")),
    Setting("learning_rate", "STRING", "1e-5", TRAIN,
            tooltip=("How big each training step is, as A1111's schedule: 'rate:until_step, rate:until_step, "
                     "...' or one rate. Hypernetworks die (images turn to noise) at high rates: the guide starts "
                     "at 5e-6, e.g. '5e-6:12000, 5e-7:30000'. Training stops where the schedule ends.")),
    Setting("steps", "INT", 1000, TRAIN, min=1, max=10_000_000,
            tooltip=("The most optimizer steps in total (training also stops where the learning-rate schedule "
                     "ends). The guide trains about 10,000-20,000 steps at 5e-6; judge by the previews, not the "
                     "count.")),
    Setting("batch_size", "INT", 1, TRAIN, min=1, max=256,
            tooltip=("Images per micro-batch (all of one size). Larger uses more VRAM; 1 is what most guides "
                     "use.")),
    Setting("grad_accumulation_steps", "INT", 1, TRAIN, min=1, max=1024,
            tooltip=("Micro-batches added up before each optimizer step: batch_size x this = the effective "
                     "batch. Raise it instead of batch_size when VRAM is short.")),
    Setting("seed", "INT", 0, TRAIN, min=0, max=MAX_SEED,
            tooltip=("Decides the image order, noise, timesteps and tag shuffling. With the same seed, a run "
                     "that is stopped and resumed continues exactly as an uninterrupted run would have.")),
    Setting("save_every", "INT", 100, TRAIN, min=0, max=1_000_000,
            tooltip=("Write <name>-<step>.pt and its .optim every N steps into models/hypernetworks/<name>/, so "
                     "you can compare checkpoints and resume from any of them (the guide: every 500). 0 = only "
                     "the final file.")),
    Setting("resume", "BOOLEAN", True, TRAIN, store="run",
            tooltip=("On: continue from the newest checkpoint of this name in its run folder (weights, optimizer "
                     "and step). Off: start again from the connected network (the earlier run's files are moved "
                     "aside, never deleted).")),
    # ---- TrainHypernetwork (optional, after its hypernetwork and options sockets)
    Setting("shuffle_tags", "BOOLEAN", False, TRAIN, optional=True,
            tooltip=("Shuffle the caption's comma-separated tags each time an image is used, so no tag order is "
                     "learned. The guide turns this on for tagged (WD14/booru-style) captions.")),
    Setting("tag_dropout", "FLOAT", 0.0, TRAIN, min=0.0, max=1.0, step=0.05, optional=True,
            tooltip=("Chance of leaving out each tag each time an image is used, so the network does not depend "
                     "on any one tag. The guide suggests a small value such as 0.1; 0 = off.")),
    Setting("latent_sampling", "COMBO", "once", TRAIN, choices=LATENT_SAMPLING, optional=True,
            tooltip=("How each image's VAE latent is drawn. once: one sample per image, cached (the guide warns "
                     "it can lead to hypernetwork death); deterministic: the mean (stable, recommended); random: "
                     "a new sample every step (most variety).")),
    Setting("settings_json", "STRING", "", TRAIN, store="run", multiline=True, optional=True,
            tooltip=("Optional preset: paste a training_settings.json from an earlier run, or a JSON object with "
                     "just the keys to change (e.g. {\"batch_size\": 2}). The keys it names replace the inputs; "
                     "the rest stay as set.")),
    # Keep last: old workflows store widget values by position.
    Setting("overwrite", "BOOLEAN", False, TRAIN, store="run", optional=True,
            tooltip=("Let the final models/hypernetworks/<name>.pt replace an existing file that this training "
                     "did not write. Off: such a file is never replaced (the run stops before training).")),
    Setting("export_run_file", "BOOLEAN", False, TRAIN, store="run", optional=True,
            tooltip=("Write this run as a run file (output/hypernetwork_runs/) for the headless multi-GPU runner "
                     "(scripts/train_run.py) instead of training: nothing is trained while this is on.")),
    # ---- HypernetworkTrainingOptions
    Setting("clip_grad_mode", "COMBO", "none", TRAINING_OPTIONS, choices=CLIP_GRAD_MODES,
            tooltip=("Gradient clipping limits how far one step can move the weights, which stops a bad batch "
                     "from wrecking the network. none: off (A1111's default); norm: cap the length of the whole "
                     "gradient (the usual choice); value: cap each gradient entry.")),
    Setting("clip_grad_value", "STRING", "0.1", TRAINING_OPTIONS,
            tooltip=("The cap for clip_grad_mode (a number or a schedule like the learning rate, e.g. '0.1'). "
                     "Smaller = gentler steps. Unused when clip_grad_mode is none.")),
    Setting("adamw_weight_decay", "FLOAT", 0.01, TRAINING_OPTIONS, key="weight_decay", min=0.0, max=0.99, step=0.001,
            tooltip=("Pulls every weight slightly towards zero each step, which keeps the network small and "
                     "general. 0.01 is torch's and A1111's value; change it only to experiment.")),
    Setting("adamw_beta1", "FLOAT", 0.9, TRAINING_OPTIONS, min=0.0, max=0.9999, step=0.001,
            tooltip=("How much each step keeps the direction of earlier steps (momentum). 0.9 is the standard; "
                     "lower reacts faster but is noisier. Rarely worth changing.")),
    Setting("adamw_beta2", "FLOAT", 0.999, TRAINING_OPTIONS, min=0.0, max=0.99999, step=0.0001,
            tooltip=("How long the optimizer remembers the size of earlier gradients. 0.999 is the standard; a "
                     "lower value (0.99) adapts faster after the data changes. Rarely worth changing.")),
    Setting("adamw_eps", "FLOAT", 1e-8, TRAINING_OPTIONS, min=1e-12, max=0.01, step=1e-9,
            tooltip=("A tiny number added so the optimizer never divides by zero. Leave it at 1e-8 (torch's and "
                     "A1111's value); it almost never needs changing.")),
    Setting("training_dtype", "COMBO", "auto", TRAINING_OPTIONS, choices=TRAINING_DTYPES,
            tooltip=("Number precision of the model while training (the hypernetwork itself always stays fp32). "
                     "auto: bf16 or fp16 mixed precision on a CUDA GPU (faster, less VRAM, as A1111 trained), "
                     "fp32 on the CPU. fp32 is slowest but exact; the report says which was used.")),
    Setting("gradient_checkpointing", "BOOLEAN", False, TRAINING_OPTIONS,
            tooltip=("Recompute parts of the model during the backward pass instead of keeping them: less VRAM, "
                     "somewhat slower steps. Turn on when training runs out of memory.")),
    Setting("clip_skip", "INT", 1, TRAINING_OPTIONS, min=1, max=12,
            tooltip=("Which CLIP text-encoder layer the captions are read from, counted from the end: 1 = the "
                     "last (A1111's default, SD1.5). Use 2 for anime models that were trained with clip skip 2.")),
    Setting("loss_type", "COMBO", "mse", TRAINING_OPTIONS, choices=LOSS_TYPES,
            tooltip=("How the difference between the model's prediction and the truth is measured. mse: as A1111 "
                     "(use this unless you have a reason); l1 and huber punish outliers less, for noisy "
                     "datasets.")),
    Setting("huber_delta", "FLOAT", 0.1, TRAINING_OPTIONS, min=0.0001, max=10.0, step=0.01,
            tooltip="For loss_type huber only: errors smaller than this count like mse, larger ones like l1."),
    Setting("scheduler", "COMBO", "a1111", TRAINING_OPTIONS, choices=SCHEDULERS,
            tooltip=("How the learning rate changes over the run. a1111: exactly the learning_rate schedule "
                     "string; cosine_restarts: MonkeyPatch's cosine curve that falls from the schedule's first "
                     "rate and restarts each cycle (set by the cosine_* inputs).")),
    Setting("cosine_cycle_steps", "INT", 64, TRAINING_OPTIONS, min=1, max=1_000_000,
            tooltip="For cosine_restarts: steps in the first cycle."),
    Setting("cosine_cycle_mult", "FLOAT", 1.0, TRAINING_OPTIONS, min=1.0, max=10.0, step=0.1,
            tooltip=("For cosine_restarts: each cycle is this many times longer than the one before (1 = all "
                     "equal).")),
    Setting("cosine_warmup_steps", "INT", 5, TRAINING_OPTIONS, min=0, max=100_000,
            tooltip=("For cosine_restarts: steps at the start of each cycle in which the rate rises from "
                     "cosine_min_lr to its peak.")),
    Setting("cosine_min_lr", "FLOAT", 6e-7, TRAINING_OPTIONS, min=1e-12, max=1.0, step=1e-7,
            tooltip="For cosine_restarts: the lowest learning rate, reached at the end of each cycle."),
    Setting("cosine_gamma", "FLOAT", 1.0, TRAINING_OPTIONS, min=0.01, max=1.0, step=0.01,
            tooltip=("For cosine_restarts: each cycle's peak rate is the previous peak times this (1 = no "
                     "decay).")),
    Setting("save_at_cycle_end", "BOOLEAN", False, TRAINING_OPTIONS,
            tooltip=("For cosine_restarts: also save a checkpoint and a preview at the end of every cycle, where "
                     "the rate is lowest and results are often best.")),
    Setting("timestep_curriculum", "BOOLEAN", False, TRAINING_OPTIONS,
            tooltip=("Train on the easy (low-noise) timesteps first: the largest noise level sampled rises "
                     "through each cosine cycle (or the whole run with the a1111 scheduler). A MonkeyPatch idea; "
                     "off trains on all noise levels from the start, as A1111.")),
    Setting("rollback", "BOOLEAN", True, TRAINING_OPTIONS,
            tooltip=("When the loss explodes or keeps being NaN, go back to the last checkpoint and continue "
                     "with a lower learning rate instead of training a dead network. Keep it on.")),
    Setting("rollback_lr_factor", "FLOAT", 0.1, TRAINING_OPTIONS, min=0.001, max=0.99, step=0.01,
            tooltip="At each rollback the learning rate is multiplied by this (0.1 = ten times smaller)."),
    Setting("max_rollbacks", "INT", 3, TRAINING_OPTIONS, min=0, max=100,
            tooltip="Give up after this many rollbacks (the report then says to lower the learning rate)."),
    Setting("save_on_cancel", "BOOLEAN", True, TRAINING_OPTIONS, store="run",
            tooltip=("Cancel saves the step training stopped at (<name>-<step>.pt with its .optim), so queueing "
                     "again resumes there and nothing trained is lost. Off: only the save_every checkpoints stay.")),
    # Judging a run: appended after the released options, so saved widget values keep their places.
    Setting("validation_images", "STRING", "0", TRAINING_OPTIONS,
            tooltip=("Hold out this many images (4) or this share of them (10%), picked by the seed and never "
                     "trained on; their loss (val_loss) is computed at every save and every validate_every steps "
                     "and names the best checkpoint. 0 = off.")),
    Setting("validate_every", "INT", 0, TRAINING_OPTIONS, min=0, max=1_000_000,
            tooltip="Also compute the validation loss every N steps (0 = only at each save)."),
    Setting("stop_after_no_improvement", "INT", 0, TRAINING_OPTIONS, min=0, max=10_000,
            tooltip=("Stop when this many validations in a row found no new lowest validation loss (0 = never). "
                     "Needs validation_images.")),
    Setting("ema_decay", "FLOAT", 0.0, TRAINING_OPTIONS, min=0.0, max=0.99999, step=0.0001,
            tooltip=("Keep an exponential moving average of the weights (0.999 typical; 0 = off), validated beside "
                     "the raw weights and saved as <name>-<step>-ema.pt.")),
    Setting("min_snr_gamma", "FLOAT", 0.0, TRAINING_OPTIONS, min=0.0, max=100.0, step=0.5,
            tooltip=("Min-SNR loss weighting (Hang et al. 2023; 5 in the paper; 0 = off): eases the low-noise "
                     "timesteps, for eps and v-prediction models.")),
    Setting("noise_offset", "FLOAT", 0.0, TRAINING_OPTIONS, min=0.0, max=1.0, step=0.01,
            tooltip="Offset noise (0.05-0.1 typical; 0 = off): lets the network change an image's overall brightness."),
    Setting("alpha_loss_weight", "BOOLEAN", False, TRAINING_OPTIONS,
            tooltip=("A1111's 'Use PNG alpha channel as loss weight': transparent pixels count less (alpha 0: not "
                     "at all); images without alpha count fully.")),
    Setting("latent_disk_cache", "BOOLEAN", True, TRAINING_OPTIONS,
            tooltip=("Keep the images' VAE latents in ComfyUI's user/hypernetwork_latent_cache folder, so later "
                     "runs on the same images, crops and VAE skip encoding (bounded in size; safe to delete).")),
    # ---- HypernetworkPreviewOptions
    Setting("preview_every", "INT", 0, PREVIEW_OPTIONS, min=0, max=1_000_000,
            tooltip=("Render a preview image every N steps, to watch the network learn (the guide: every 500). 0 "
                     "= no previews.")),
    Setting("preview_prompt", "STRING", "", PREVIEW_OPTIONS, store="preview", key="prompt", multiline=True,
            tooltip=("What the previews show. Empty = the training template filled with the first image's "
                     "caption, as A1111 does; write a prompt to check how the network generalises.")),
    Setting("preview_negative", "STRING", "", PREVIEW_OPTIONS, store="preview", key="negative", multiline=True,
            tooltip="Negative prompt of the previews: what they should not show."),
    Setting("preview_seed", "INT", 0, PREVIEW_OPTIONS, store="preview", key="seed", min=0, max=MAX_SEED,
            tooltip="Seed of the previews (with preview_seed_mode fixed, every preview uses it)."),
    Setting("preview_seed_mode", "COMBO", "fixed", PREVIEW_OPTIONS, choices=PREVIEW_SEED_MODES,
            tooltip=("fixed: every preview uses preview_seed, so previews compare across steps; random: a new "
                     "seed per preview (A1111's -1), each reported.")),
    Setting("preview_steps", "INT", 20, PREVIEW_OPTIONS, store="preview", key="steps", min=1, max=200,
            tooltip="Sampling steps per preview; fewer = faster previews (each one pauses training)."),
    Setting("preview_cfg", "FLOAT", 7.0, PREVIEW_OPTIONS, store="preview", key="cfg", min=0.0, max=100.0, step=0.1,
            tooltip="CFG scale of the previews (how strictly they follow the prompt); 7 is a common value."),
    Setting("preview_sampler", "COMBO", "euler", PREVIEW_OPTIONS,
            store="preview", key="sampler", choices=HOST_SAMPLERS,
            tooltip=("The sampler that renders the previews. euler is fast and works at few preview_steps; keep "
                     "the one you generate with to see the network as you will use it.")),
    # ---- only in a settings file (no widget)
    Setting("preview_scheduler", "COMBO", "normal", None, store="preview", key="scheduler", choices=("normal",),
            tooltip="The preview's noise schedule."),
    Setting("keep_tokens", "INT", 0, None, min=0, max=1000,
            tooltip="Leading tags that shuffle and dropout never touch."),
    Setting("curriculum_start", "FLOAT", 0.25, None, min=0.001, max=1.0,
            tooltip="Timestep curriculum: the largest timestep starts at this fraction of 1000."),
    Setting("divergence_factor", "FLOAT", 4.0, None, min=1.0, max=1e6,
            tooltip="Divergence: loss this many times its running baseline."),
    Setting("divergence_window", "INT", 8, None, min=1, max=100_000,
            tooltip="Divergence: steps the loss must stay high."),
    Setting("max_weight_norm", "FLOAT", 1e4, None, min=1e-6, max=1e12,
            tooltip="Divergence: the network's weight norm may not exceed this."),
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
        return Setting(name, "COMBO", extras.get("default"), None, choices=tuple(kind))
    if kind not in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        return None
    return Setting(name, kind, extras.get("default"), None, min=extras.get("min"), max=extras.get("max"))


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
