"""HypernetworkXYGrid: an A1111-style X/Y comparison grid of hypernetworks and sampling settings."""
from __future__ import annotations

from ..hypernet.grid.plan import BaseSettings
from ..hypernet.grid.values import AxisType, parse_numbers
from .host import sampling
from .sockets import CATEGORY_GENERATION, HYPERNETWORK
from .xygrid_run import run_xy_grid

AXIS_TYPES = [t.value for t in AxisType]
_VALUES_TOOLTIP = ("Comma-separated values; numbers also as ranges '1-5', '1-10 (+3)', '1-10 [4]' (floats too). "
                   "Hypernetwork: file names or globs like 'mynet/*.pt' (ordered by training step); "
                   "prompt_sr: the first value is the text to search for; seed -1 draws a random seed.")


def _has_random_seed(axis_type: str, values: str) -> bool:
    if axis_type != AxisType.SEED.value:
        return False
    try:
        return -1 in parse_numbers(values, int, axis_type=AxisType.SEED)
    except ValueError:
        return False  # the run reports the bad value


class HypernetworkXYGrid:
    DESCRIPTION = ("Samples one image per combination of an X and a Y axis (hypernetwork files, strength, seed, "
                   "steps, cfg, sampler, scheduler, prompt S/R, clip skip) and saves a labelled grid; every cell "
                   "is exactly what a plain KSampler graph with those settings gives.")
    CATEGORY = CATEGORY_GENERATION
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("grid", "cells")
    OUTPUT_TOOLTIPS = ("The labelled grid (also saved to the output folder).",
                       "Every cell image as a batch, row by row (row = Y value, column = X value).")
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        axis = {"default": "none", "tooltip": "What this axis varies ('none' = a single value)."}
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample (never modified; networks patch clones)."}),
                "clip": ("CLIP", {"tooltip": "Encodes the prompts (per cell, for prompt S/R and clip skip)."}),
                "vae": ("VAE", {"tooltip": "Decodes every cell."}),
                "positive": ("STRING", {"default": "", "multiline": True, "tooltip": "The prompt."}),
                "negative": ("STRING", {"default": "", "multiline": True, "tooltip": "The negative prompt."}),
                "width": ("INT", {"default": 512, "min": 16, "max": 8192, "step": 8,
                                  "tooltip": "Width of every cell image in pixels."}),
                "height": ("INT", {"default": 512, "min": 16, "max": 8192, "step": 8,
                                   "tooltip": "Height of every cell image in pixels."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Noise seed of every cell unless an axis varies it (as KSampler)."}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000, "tooltip": "Sampling steps."}),
                "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "Classifier-free guidance scale."}),
                "sampler_name": (sampling.sampler_names(), {"tooltip": "The sampler (as KSampler)."}),
                "scheduler": (sampling.scheduler_names(), {"tooltip": "The noise schedule (as KSampler)."}),
                "clip_skip": ("INT", {"default": 1, "min": 1, "max": 24,
                                      "tooltip": "A1111 clip skip: 1 = last CLIP layer, 2 = skip one, ..."}),
                "x_type": (AXIS_TYPES, dict(axis)),
                "x_values": ("STRING", {"default": "", "multiline": True,
                                        "tooltip": "X axis values (columns). " + _VALUES_TOOLTIP}),
                "y_type": (AXIS_TYPES, dict(axis)),
                "y_values": ("STRING", {"default": "", "multiline": True,
                                        "tooltip": "Y axis values (rows). " + _VALUES_TOOLTIP}),
                "filename_prefix": ("STRING", {
                    "default": "xy_grid", "tooltip": "Grid file name prefix in the output folder (as SaveImage)."}),
            },
            "optional": {
                "hypernetwork": (HYPERNETWORK, {
                    "tooltip": "A network applied to every cell, unless an axis is a hypernetwork axis."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01,
                                       "tooltip": "Strength of the connected or axis hypernetwork (a strength "
                                                  "axis overrides it)."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @classmethod
    def IS_CHANGED(cls, x_type="none", x_values="", y_type="none", y_values="", **_):
        """Seed -1 on an axis draws new seeds on every run, so such a grid is never reused from cache."""
        if _has_random_seed(x_type, x_values) or _has_random_seed(y_type, y_values):
            return float("nan")
        return ""

    def run(self, model, clip, vae, positive, negative, width, height, seed, steps, cfg, sampler_name, scheduler,
            clip_skip, x_type, x_values, y_type, y_values, filename_prefix, hypernetwork=None, strength=1.0,
            prompt=None, extra_pnginfo=None):
        base = BaseSettings(positive=positive, negative=negative, width=width, height=height, seed=seed,
                            steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                            clip_skip=clip_skip, strength=strength, has_connected=hypernetwork is not None)
        result = run_xy_grid(model, clip, vae, base, x_type, x_values, y_type, y_values, filename_prefix,
                             connected=hypernetwork, prompt=prompt, extra_pnginfo=extra_pnginfo)
        return {"ui": {"images": [result.saved.to_ui()]}, "result": (result.grid, result.cells)}
