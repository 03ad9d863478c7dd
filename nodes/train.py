"""TrainHypernetwork: train a hypernetwork on the host's own model, A1111-style, resumable."""
from __future__ import annotations

import json

from ..hypernet.network.fileio import load_hypernetwork
from ..hypernet.train import settings
from ..hypernet.train.checkpoints import RunFolder
from ..hypernet.train.train_config import TrainConfig, preset_from_json
from ..hypernet.train.loss_plot import render_loss_plot
from ..hypernet.train.training_preview import PreviewSettings
from ..hypernet.util.names import safe_name
from . import network_files, run_export
from .host import feedback
from .sockets import CATEGORY_TRAINING, HN_DATASET, HN_LOSS, HN_TRAIN_OPTIONS, HYPERNETWORK
from .tensors import pil_to_image
from .train_options import HOST_CHOICES, OPTION_NAMES, node_inputs, option_defaults
from .training_session import TrainingSession

_OWN = settings.settings_of(settings.TRAIN)  # the settings shown on this node, in widget order
_OWN_NAMES = frozenset(s.name for s in _OWN)


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
    """Every option, validated: the defaults, then values given the old way, then the options socket's."""
    resolved = option_defaults()
    for values in legacy:
        unknown = sorted(set(values) - OPTION_NAMES)
        if unknown:
            raise TypeError(f"TrainHypernetwork got unknown inputs {unknown}")
        resolved.update(settings.check_options(values, HOST_CHOICES, "TrainHypernetwork"))
    if options is not None:
        if not isinstance(options, dict):
            raise ValueError("options: connect a Hypernetwork Training Options or Preview Options node")
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ValueError(f"options: unknown settings {unknown}")
        resolved.update(settings.check_options(options, HOST_CHOICES))
    return resolved


def overridden_settings(options: dict | None, *legacy: dict) -> list[str]:
    """Report lines for settings given to Train directly that the options socket overrides."""
    return [f"{name} {value!r} given to Train Hypernetwork directly is overridden by the options node's "
            f"{options[name]!r}"
            for values in legacy for name, value in values.items()
            if isinstance(options, dict) and name in options and options[name] != value]


def own_inputs(values: dict) -> dict:
    """This node's own settings, validated; an optional one an API prompt left out gets its default."""
    resolved = settings.defaults(_OWN_NAMES)
    resolved.update({name: value for name, value in values.items() if name in _OWN_NAMES})
    return {s.name: settings.check_value(s, resolved[s.name]) for s in _OWN}


def build_config(values: dict, settings_json: str = "") -> TrainConfig:
    """The run's TrainConfig from settings by input name; a settings_json preset replaces only the
    keys it names (a run's full training_settings.json replaces them all)."""
    fields = settings.values_for("config", values)
    if settings_json.strip():
        fields.update(preset_from_json(settings_json, "settings_json"))
    return TrainConfig(**fields)


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
        required.update({s.name: settings.input_spec(s) for s in _OWN if not s.optional})
        optional = {
            "hypernetwork": (HYPERNETWORK, {"tooltip": "The network to train (from Create Hypernetwork); overrides "
                                                       "the file."}),
            "options": (HN_TRAIN_OPTIONS, {"tooltip": "Rarely changed settings: connect Hypernetwork Training "
                                                      "Options and/or Hypernetwork Preview Options (defaults apply "
                                                      "without them)."}),
        }
        optional.update({s.name: settings.input_spec(s) for s in _OWN if s.optional})
        # UNIQUE_ID: the id the server executes this node under (a path inside subgraphs); the
        # frontend routes the node's live events by it.
        # PROMPT: to find the checkpoint the MODEL was loaded from (sd_checkpoint), and to read
        # settings that API prompts of earlier versions still give this node directly (see
        # legacy_options).
        return {"required": required, "optional": optional,
                "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"}}

    @classmethod
    def LEGACY_INPUT_TYPES(cls):
        """Inputs that API prompts of earlier versions still give this node (read by legacy_options),
        so that `input_check` checks their values like declared ones."""
        return {**node_inputs(settings.TRAINING_OPTIONS), **node_inputs(settings.PREVIEW_OPTIONS)}

    def train(self, model, clip, vae, dataset, hypernetwork_name, hypernetwork=None, options=None, unique_id=None,
              prompt=None, **inputs):
        own = own_inputs(inputs)
        legacy = {name: value for name, value in inputs.items() if name not in _OWN_NAMES}
        direct = (legacy_options(prompt, unique_id), legacy)
        overridden = overridden_settings(options, *direct)
        options = resolve_options(options, *direct)
        network, source_file = self._network(hypernetwork, hypernetwork_name)
        config = build_config({**options, **own}, own["settings_json"])
        preview = PreviewSettings(**settings.values_for("preview", options))
        resume, overwrite = own["resume"], own["overwrite"]
        if own["export_run_file"]:
            return run_export.export_run(network=network, source_file=source_file, hypernetwork_name=hypernetwork_name,
                                         dataset=dataset, config=config, preview=preview, resume=resume,
                                         overwrite=overwrite, prompt=prompt, unique_id=unique_id)
        session = TrainingSession(model=model, clip=clip, vae=vae, dataset=dataset, network=network,
                                  source_file=source_file, config=config, resume=resume, preview=preview,
                                  node_id=str(unique_id) if unique_id is not None else feedback.executing_node_id(),
                                  overwrite=overwrite,
                                  graph=(prompt, unique_id), save_on_cancel=options["save_on_cancel"])
        session.notes.extend(overridden)
        outcome = session.run()
        result = outcome.result
        if result.stopped == "cancelled":
            feedback.raise_if_interrupted()
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
        # Never trained in place: the session starts from a copy (resume_point), so that the graph
        # cache's network stays as it came in.
        if hypernetwork is not None:
            return hypernetwork, None
        if hypernetwork_name == "none":
            raise ValueError("hypernetwork_name: 'none' needs a connected hypernetwork; create one with "
                             "Create Hypernetwork or pick a file to continue")
        path = network_files.resolve_file(hypernetwork_name)
        network = load_hypernetwork(path)
        # A1111: the run is named after the file; the name stored inside it is only metadata.
        network.rename(safe_name(path.stem, "hypernetwork_name"))
        return network, path
