"""TrainHypernetwork: train a hypernetwork on the host's own model, A1111-style, resumable."""
from __future__ import annotations

import json

from ..hypernet.network.fileio import load_hypernetwork
from ..hypernet.train.checkpoints import RunFolder
from ..hypernet.train.config import LATENT_SAMPLING, TrainConfig
from ..hypernet.train.loss_plot import render_loss_plot
from ..hypernet.train.preview import PreviewSettings
from ..hypernet.train.trainer import copy_network
from ..hypernet.util.names import safe_name
from . import bridge, network_files
from .sockets import CATEGORY_TRAINING, HN_DATASET, HN_LOSS, HN_TRAIN_OPTIONS, HYPERNETWORK
from .tensors import pil_to_image
from .train_options import OPTION_NAMES, option_defaults
from .training_session import TrainingSession

_CONFIG = TrainConfig()  # the widgets' defaults are the config's

_REQUIRED = {
    "template": ("STRING", {"default": _CONFIG.template, "multiline": True,
                            "tooltip": "Prompt template, one line per variant: [filewords] = the caption, "
                                       "[name] = the hypernetwork name (A1111)."}),
    "learning_rate": ("STRING", {"default": _CONFIG.learning_rate,
                                 "tooltip": "A1111 schedule: '5e-6:12000, 5e-7:30000' (rate until step), or one "
                                            "rate. Training ends where the schedule ends."}),
    "steps": ("INT", {"default": _CONFIG.steps, "min": 1, "max": 10_000_000,
                      "tooltip": "Maximum optimizer steps in total."}),
    "batch_size": ("INT", {"default": _CONFIG.batch_size, "min": 1, "max": 256,
                           "tooltip": "Images per micro-batch (always of one size/bucket)."}),
    "grad_accumulation_steps": ("INT", {"default": _CONFIG.grad_accumulation_steps, "min": 1, "max": 1024,
                                        "tooltip": "Micro-batches summed into one optimizer step."}),
    "seed": ("INT", {"default": _CONFIG.seed, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                     "tooltip": "Seeds batch order, noise, timesteps and tag shuffling (resume-exact)."}),
    "save_every": ("INT", {"default": _CONFIG.save_every, "min": 0, "max": 1_000_000,
                           "tooltip": "Write <name>-<step>.pt + .optim every N steps (0 = only at the end)."}),
    "resume": ("BOOLEAN", {"default": True,
                           "tooltip": "Continue from the newest matching checkpoint of this name, if any."}),
}

_OPTIONAL = {
    "hypernetwork": (HYPERNETWORK, {"tooltip": "The network to train (from Create Hypernetwork); overrides the file."}),
    "options": (HN_TRAIN_OPTIONS, {"tooltip": "Rarely changed settings: connect Hypernetwork Training Options and/or "
                                              "Hypernetwork Preview Options (defaults apply without them)."}),
    "shuffle_tags": ("BOOLEAN", {"default": _CONFIG.shuffle_tags,
                                 "tooltip": "Shuffle the caption's comma-separated tags each use."}),
    "tag_dropout": ("FLOAT", {"default": _CONFIG.tag_dropout, "min": 0.0, "max": 1.0, "step": 0.05,
                              "tooltip": "Probability of dropping each tag each use."}),
    "latent_sampling": (list(LATENT_SAMPLING), {"default": _CONFIG.latent_sampling,
                                                "tooltip": "once: one VAE sample per image; deterministic: the "
                                                           "mean; random: a new sample every step."}),
    "settings_json": ("STRING", {"default": "", "multiline": True,
                                 "tooltip": "Optional preset: a training_settings.json from an earlier run; its "
                                            "values replace the inputs above."}),
    # Keep last: old workflows store widget values by position.
    "overwrite": ("BOOLEAN", {"default": False,
                              "tooltip": "Let the final models/hypernetworks/<name>.pt replace an existing file "
                                         "that this training did not write. Off: such a file is never replaced."}),
}


def last_checkpoint_line(run_folder: RunFolder, config: TrainConfig) -> str:
    """Where to resume after a divergence: the newest checkpoint that really exists, or why none does."""
    checkpoints = run_folder.checkpoints()
    if checkpoints:
        return f"the last good checkpoint is {checkpoints[-1].path}; lower the learning rate and queue again to resume"
    return (f"no checkpoint was saved before it diverged (save_every {config.save_every}); lower the learning "
            "rate or save more often, and start again")


def legacy_options(prompt: dict | None, unique_id: str | None) -> dict:
    """Option values an API prompt of an earlier version gives this node directly (the host drops
    inputs the node no longer declares, so they are read from the prompt itself)."""
    node = (prompt or {}).get(str(unique_id)) if unique_id is not None else None
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    found = {}
    for name, value in inputs.items():
        if name not in OPTION_NAMES:
            continue
        if isinstance(value, list):  # a link: only the options nodes can take linked settings now
            raise ValueError(f"{name}: TrainHypernetwork no longer has this input; connect it to a "
                             "Hypernetwork Training/Preview Options node and that to 'options'")
        found[name] = value
    return found


def resolve_options(options: dict | None, *legacy: dict) -> dict:
    """Every option: the defaults, then values given the old way, then the options socket's."""
    resolved = option_defaults()
    for values in legacy:
        unknown = sorted(set(values) - OPTION_NAMES)
        if unknown:
            raise TypeError(f"TrainHypernetwork got unknown inputs {unknown}")
        resolved.update(values)
    if options is not None:
        if not isinstance(options, dict):
            raise ValueError("options: connect a Hypernetwork Training Options or Preview Options node")
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ValueError(f"options: unknown settings {unknown}")
        resolved.update(options)
    return resolved


def overridden_settings(options: dict | None, *legacy: dict) -> list[str]:
    """Report lines for settings given to Train directly that the options socket overrides."""
    return [f"{name} {value!r} given to Train Hypernetwork directly is overridden by the options node's "
            f"{options[name]!r}"
            for values in legacy for name, value in values.items()
            if options and name in options and options[name] != value]


class TrainHypernetwork:
    DESCRIPTION = ("Trains a hypernetwork on the connected model with A1111's loss, schedules and file format. "
                   "Checkpoints, .optim, previews, loss CSV and settings go to models/hypernetworks/<name>/; "
                   "Cancel keeps the last checkpoint and queueing again resumes it.")
    CATEGORY = CATEGORY_TRAINING
    RETURN_TYPES = (HYPERNETWORK, "STRING", HN_LOSS, "IMAGE")
    RETURN_NAMES = ("hypernetwork", "path", "loss", "loss_plot")
    OUTPUT_TOOLTIPS = ("The trained network (connect to Apply Hypernetwork).",
                       "The final .pt file (models/hypernetworks/<name>.pt).",
                       "Loss history: steps, losses, learning rates, events.",
                       "A chart of the loss and learning rate.")
    OUTPUT_NODE = True
    FUNCTION = "train"

    @classmethod
    def INPUT_TYPES(cls):
        required = {
            "model": ("MODEL", {"tooltip": "The model to train on (never modified; a frozen copy is trained through)."}),
            "clip": ("CLIP", {"tooltip": "Text encoder for the captions (frozen)."}),
            "vae": ("VAE", {"tooltip": "Encodes the images once into cached latents (frozen)."}),
            "dataset": (HN_DATASET, {"tooltip": "From Load Dataset / Preprocess Images / WD14 Tagger."}),
            "hypernetwork_name": (network_files.choices(), {
                "tooltip": "Continue a file from the hypernetworks folder; 'none' uses the connected network."}),
        }
        required.update(_REQUIRED)
        # UNIQUE_ID: the id the server executes this node under (a path inside subgraphs); the
        # frontend routes the node's live events by it.
        # PROMPT: to find the checkpoint the MODEL was loaded from (sd_checkpoint), and to read
        # settings that API prompts of earlier versions still give this node directly (see
        # legacy_options).
        return {"required": required, "optional": dict(_OPTIONAL),
                "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"}}

    def train(self, model, clip, vae, dataset, hypernetwork_name, template, learning_rate, steps, batch_size,
              grad_accumulation_steps, seed, save_every, resume, hypernetwork=None, settings_json="",
              overwrite=False, options=None, unique_id=None, prompt=None, shuffle_tags=_CONFIG.shuffle_tags,
              tag_dropout=_CONFIG.tag_dropout, latent_sampling=_CONFIG.latent_sampling, **legacy):
        direct = (legacy_options(prompt, unique_id), legacy)
        overridden = overridden_settings(options, *direct)
        options = resolve_options(options, *direct)
        options.update(shuffle_tags=shuffle_tags, tag_dropout=tag_dropout, latent_sampling=latent_sampling)
        network, source_file = self._network(hypernetwork, hypernetwork_name)
        config = self._config(template=template, learning_rate=learning_rate, steps=steps, batch_size=batch_size,
                              grad_accumulation_steps=grad_accumulation_steps, seed=seed, save_every=save_every,
                              settings_json=settings_json, **options)
        preview = PreviewSettings(prompt=options["preview_prompt"], negative=options["preview_negative"],
                                  seed=options["preview_seed"], steps=options["preview_steps"],
                                  cfg=options["preview_cfg"], sampler=options["preview_sampler"])
        session = TrainingSession(model=model, clip=clip, vae=vae, dataset=dataset, network=network,
                                  source_file=source_file, config=config, resume=resume, preview=preview,
                                  node_id=str(unique_id) if unique_id is not None else bridge.executing_node_id(),
                                  overwrite=overwrite,
                                  graph=(prompt, unique_id))
        session.notes.extend(overridden)
        outcome = session.run()
        result = outcome.result
        if result.stopped == "cancelled":
            bridge.raise_if_interrupted()
        if result.stopped == "diverged":
            raise RuntimeError(outcome.report + "\n" + last_checkpoint_line(session.run_folder, config))
        history = result.history
        plot = render_loss_plot(history.steps, history.losses, history.learning_rates, history.events)
        final_path = str(result.final_path or "")
        # `hn_preview`, not `images`: the node shows its previews in its own widget, and the
        # frontend draws an `images` output below the node a second time.
        ui = {"text": [outcome.report], "hn_preview": outcome.previews[-4:],
              "loss": [json.dumps(history.to_dict())]}
        return {"ui": ui, "result": (result.network, final_path, history, pil_to_image(plot))}

    @staticmethod
    def _network(hypernetwork, hypernetwork_name):
        if hypernetwork is not None:
            return copy_network(hypernetwork), None
        if hypernetwork_name == "none":
            raise ValueError("hypernetwork_name: 'none' needs a connected hypernetwork; create one with "
                             "Create Hypernetwork or pick a file to continue")
        path = network_files.resolve_file(hypernetwork_name)
        network = copy_network(load_hypernetwork(path))
        # A1111: the run is named after the file; the name stored inside it is only metadata.
        network.rename(safe_name(path.stem, "hypernetwork_name"))
        return network, path

    @staticmethod
    def _config(settings_json: str = "", **values) -> TrainConfig:
        renames = {"adamw_weight_decay": "weight_decay"}
        skip = {"preview_prompt", "preview_negative", "preview_seed", "preview_steps", "preview_cfg",
                "preview_sampler"}  # preview_every and preview_seed_mode are TrainConfig fields
        fields = {renames.get(k, k): v for k, v in values.items() if k not in skip}
        if settings_json.strip():
            preset = TrainConfig.from_json(settings_json, "settings_json").to_dict()
            fields.update(preset)
        return TrainConfig(**fields)
