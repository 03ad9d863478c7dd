"""TrainHypernetwork: train a hypernetwork on the host's own model, A1111-style, resumable."""
from __future__ import annotations

import json

from ..hypernet.checkpoints import RunFolder
from ..hypernet.fileio import load_hypernetwork
from ..hypernet.loss_plot import render_loss_plot
from ..hypernet.names import safe_name
from ..hypernet.train_config import CLIP_GRAD_MODES, LATENT_SAMPLING, LOSS_TYPES, SCHEDULERS, TRAINING_DTYPES, TrainConfig
from ..hypernet.trainer import copy_network
from . import bridge, network_files
from .sockets import CATEGORY_TRAINING, HN_DATASET, HN_LOSS, HYPERNETWORK
from .tensors import pil_to_image
from .training_session import PreviewSettings, TrainingSession

_REQUIRED = {
    "template": ("STRING", {"default": "[filewords], [name]", "multiline": True,
                            "tooltip": "Prompt template, one line per variant: [filewords] = the caption, "
                                       "[name] = the hypernetwork name (A1111)."}),
    "learning_rate": ("STRING", {"default": "1e-5",
                                 "tooltip": "A1111 schedule: '5e-6:12000, 5e-7:30000' (rate until step), or one "
                                            "rate. Training ends where the schedule ends."}),
    "steps": ("INT", {"default": 1000, "min": 1, "max": 10_000_000, "tooltip": "Maximum optimizer steps in total."}),
    "batch_size": ("INT", {"default": 1, "min": 1, "max": 256,
                           "tooltip": "Images per micro-batch (always of one size/bucket)."}),
    "grad_accumulation_steps": ("INT", {"default": 1, "min": 1, "max": 1024,
                                        "tooltip": "Micro-batches summed into one optimizer step."}),
    "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                     "tooltip": "Seeds batch order, noise, timesteps and tag shuffling (resume-exact)."}),
    "save_every": ("INT", {"default": 100, "min": 0, "max": 1_000_000,
                           "tooltip": "Write <name>-<step>.pt + .optim every N steps (0 = only at the end)."}),
    "resume": ("BOOLEAN", {"default": True,
                           "tooltip": "Continue from the newest matching checkpoint of this name, if any."}),
}

_OPTIONAL = {
    "hypernetwork": (HYPERNETWORK, {"tooltip": "The network to train (from Create Hypernetwork); overrides the file."}),
    "clip_grad_mode": (list(CLIP_GRAD_MODES), {"default": "none", "tooltip": "Gradient clipping (after unscaling)."}),
    "clip_grad_value": ("STRING", {"default": "0.1", "tooltip": "Clip value; schedule syntax allowed."}),
    "shuffle_tags": ("BOOLEAN", {"default": False, "tooltip": "Shuffle the caption's comma-separated tags each use."}),
    "tag_dropout": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                              "tooltip": "Probability of dropping each tag each use."}),
    "latent_sampling": (list(LATENT_SAMPLING), {"default": "once",
                                                "tooltip": "once: one VAE sample per image; deterministic: the "
                                                           "mean; random: a new sample every step."}),
    "preview_every": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                              "tooltip": "Render a preview every N steps (0 = off)."}),
    "preview_prompt": ("STRING", {"default": "", "multiline": True,
                                  "tooltip": "Preview prompt (empty = the first image's caption)."}),
    "preview_negative": ("STRING", {"default": "", "multiline": True, "tooltip": "Preview negative prompt."}),
    "preview_seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Preview seed."}),
    "preview_steps": ("INT", {"default": 20, "min": 1, "max": 200, "tooltip": "Preview sampling steps."}),
    "preview_cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "tooltip": "Preview CFG."}),
    "preview_sampler": (bridge.sampler_names(), {"default": "euler", "tooltip": "Preview sampler."}),
    "adamw_weight_decay": ("FLOAT", {"default": 0.01, "min": 0.0, "max": 0.99, "step": 0.001,
                                     "tooltip": "AdamW weight decay (torch's default, what A1111 used)."}),
    "adamw_beta1": ("FLOAT", {"default": 0.9, "min": 0.0, "max": 0.9999, "step": 0.001, "tooltip": "AdamW beta1."}),
    "adamw_beta2": ("FLOAT", {"default": 0.999, "min": 0.0, "max": 0.99999, "step": 0.0001,
                              "tooltip": "AdamW beta2."}),
    "adamw_eps": ("FLOAT", {"default": 1e-8, "min": 1e-12, "max": 1e-2, "step": 1e-9, "tooltip": "AdamW epsilon."}),
    "training_dtype": (list(TRAINING_DTYPES), {"default": "fp32",
                                               "tooltip": "Autocast dtype for the model forward; the "
                                                          "hypernetwork itself always stays fp32."}),
    "gradient_checkpointing": ("BOOLEAN", {"default": False,
                                           "tooltip": "Recompute transformer blocks in backward: less memory."}),
    "clip_skip": ("INT", {"default": 1, "min": 1, "max": 12, "tooltip": "1 = last CLIP layer (A1111 default)."}),
    "loss_type": (list(LOSS_TYPES), {"default": "mse", "tooltip": "mse (A1111), l1 or huber."}),
    "scheduler": (list(SCHEDULERS), {"default": "a1111",
                                     "tooltip": "a1111: the schedule string; cosine_restarts: MonkeyPatch's "
                                                "cosine annealing with warm restarts from its first rate."}),
    "cosine_cycle_steps": ("INT", {"default": 64, "min": 1, "max": 1_000_000,
                                   "tooltip": "cosine_restarts: steps in the first cycle."}),
    "cosine_cycle_mult": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 10.0, "step": 0.1,
                                    "tooltip": "cosine_restarts: each cycle is this much longer than the last."}),
    "cosine_warmup_steps": ("INT", {"default": 5, "min": 0, "max": 100_000,
                                    "tooltip": "cosine_restarts: linear warm-up steps at the start of each cycle."}),
    "cosine_min_lr": ("FLOAT", {"default": 6e-7, "min": 1e-12, "max": 1.0, "step": 1e-7,
                                "tooltip": "cosine_restarts: the lowest learning rate of a cycle."}),
    "cosine_gamma": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                               "tooltip": "cosine_restarts: the peak rate is multiplied by this each cycle."}),
    "save_at_cycle_end": ("BOOLEAN", {"default": False,
                                      "tooltip": "cosine_restarts: also save and preview at the end of every cycle."}),
    "timestep_curriculum": ("BOOLEAN", {"default": False,
                                        "tooltip": "Sample timesteps up to a maximum that rises through each cycle "
                                                   "(the whole run for the a1111 scheduler)."}),
    "huber_delta": ("FLOAT", {"default": 0.1, "min": 1e-4, "max": 10.0, "step": 0.01,
                              "tooltip": "huber loss: where it turns from quadratic to linear."}),
    "rollback": ("BOOLEAN", {"default": True,
                             "tooltip": "On divergence or repeated NaN, go back to the last checkpoint with a "
                                        "lower learning rate."}),
    "rollback_lr_factor": ("FLOAT", {"default": 0.1, "min": 0.001, "max": 0.99, "step": 0.01,
                                     "tooltip": "Learning-rate multiplier applied at each rollback."}),
    "max_rollbacks": ("INT", {"default": 3, "min": 0, "max": 100, "tooltip": "Stop after this many rollbacks."}),
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
        return {"required": required, "optional": dict(_OPTIONAL), "hidden": {"unique_id": "UNIQUE_ID"}}

    def train(self, model, clip, vae, dataset, hypernetwork_name, template, learning_rate, steps, batch_size,
              grad_accumulation_steps, seed, save_every, resume, hypernetwork=None, settings_json="",
              overwrite=False, unique_id=None, **options):
        network, source_file = self._network(hypernetwork, hypernetwork_name)
        config = self._config(template=template, learning_rate=learning_rate, steps=steps, batch_size=batch_size,
                              grad_accumulation_steps=grad_accumulation_steps, seed=seed, save_every=save_every,
                              settings_json=settings_json, **options)
        preview = PreviewSettings(prompt=options.get("preview_prompt", ""),
                                  negative=options.get("preview_negative", ""),
                                  seed=options.get("preview_seed", 0), steps=options.get("preview_steps", 20),
                                  cfg=options.get("preview_cfg", 7.0), sampler=options.get("preview_sampler", "euler"))
        session = TrainingSession(model=model, clip=clip, vae=vae, dataset=dataset, network=network,
                                  source_file=source_file, config=config, resume=resume, preview=preview,
                                  node_id=str(unique_id) if unique_id is not None else bridge.executing_node_id(),
                                  overwrite=overwrite)
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
                "preview_sampler"}
        fields = {renames.get(k, k): v for k, v in values.items() if k not in skip}
        if settings_json.strip():
            preset = TrainConfig.from_json(settings_json, "settings_json").to_dict()
            fields.update(preset)
        return TrainConfig(**fields)
