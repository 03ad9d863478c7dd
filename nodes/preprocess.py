"""HypernetworkPreprocess: A1111's "Preprocess images" and kohya buckets on an HN_DATASET."""
from __future__ import annotations

import logging

from ..hypernet.data.dataset_preview import preview_tensor
from ..hypernet.preprocess.autosize import OBJECTIVES
from ..hypernet.preprocess.captions import CAPTION_ACTIONS, caption_action
from ..hypernet.preprocess.preprocess_config import IF_OUTPUT_EXISTS, MAX_WORKERS, MODES, PreprocessConfig
from ..hypernet.preprocess.pipeline import preprocess
from ..hypernet.util.paths import climbs_out, user_folder
from .host import feedback, paths, upscaling
from .dataset import HostProgress
from .legacy_values import accept_renamed
from .sockets import CATEGORY_DATASET, HN_DATASET

logger = logging.getLogger(__name__)


def resolve_output_directory(text: str) -> str:
    """'' (no files: a lazy dataset), an absolute folder, or one inside ComfyUI's output folder."""
    text = (text or "").strip()
    if not text:
        return ""
    if climbs_out(text):
        raise ValueError(f"output_directory: {text!r} leaves ComfyUI's output folder; give a folder inside "
                         f"{paths.output_directory()} or an absolute path")
    return str(user_folder(text, paths.output_directory()))


def _size(default: int, tooltip: str) -> tuple:
    return ("INT", {"default": default, "min": 64, "max": 2048, "step": 8, "tooltip": tooltip})


def _unit(default: float, tooltip: str, high: float = 1.0) -> tuple:
    return ("FLOAT", {"default": default, "min": 0.0, "max": high, "step": 0.05, "tooltip": tooltip})


class HypernetworkPreprocess:
    DESCRIPTION = ("Crops, fits or buckets every dataset image to the training size, with A1111's split, focal-"
                   "point crop, auto-sized crop and flipped copies; writes PNG + caption files to an output "
                   "folder, or (with no folder) keeps the steps in the dataset and applies them when training.")
    CATEGORY = CATEGORY_DATASET
    RETURN_TYPES = (HN_DATASET, "STRING", "IMAGE")
    RETURN_NAMES = ("dataset", "report", "preview")
    OUTPUT_TOOLTIPS = ("The processed dataset (source files are never changed).",
                       "What was made from how many images, buckets, skipped files and where files went.",
                       "The first processed images, for a quick look.")
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset": (HN_DATASET, {"tooltip": "From Load Dataset (or another Preprocess / WD14 Tagger)."}),
                "width": _size(512, "Output width in pixels (training width; the bucket area for 'buckets')."),
                "height": _size(512, "Output height in pixels (training height; the bucket area for 'buckets')."),
                "mode": (list(MODES), {
                    "default": "crop",
                    "tooltip": "crop: cover width x height and centre-crop (A1111). fit: fit inside and pad. "
                               "buckets: kohya aspect-ratio buckets. keep: keep each size (trimmed to /8)."}),
                "flip": ("BOOLEAN", {"default": False,
                                     "tooltip": "Also add a mirrored copy of every output (A1111 'Create flipped "
                                                "copies')."}),
                "existing_caption": (list(CAPTION_ACTIONS), {
                    "default": "copy",
                    "tooltip": "Combine each image's caption with caption_text: copy keeps the caption, ignore "
                               "uses caption_text only, existing_first = caption + text (A1111's 'prepend'), "
                               "new_first = text + caption (A1111's 'append')."}),
                "caption_text": ("STRING", {"default": "",
                                            "tooltip": "New caption text combined per existing_caption "
                                                       "(e.g. a trigger word)."}),
                "output_directory": ("STRING", {
                    "default": "",
                    "tooltip": "Where to write NNNNN-S-name.png + .txt: absolute, or relative to ComfyUI's output "
                               "folder. Empty writes nothing (steps are applied when training loads images)."}),
                "if_output_exists": (list(IF_OUTPUT_EXISTS), {
                    "default": "new_subfolder",
                    "tooltip": "When the output folder already holds files: refuse, overwrite a previous "
                               "Preprocess run's files, or write into a fresh run-NNNN subfolder."}),
            },
            "optional": {
                "bucket_min": ("INT", {"default": 256, "min": 64, "max": 2048, "step": 8,
                                       "tooltip": "buckets: smallest bucket side (kohya min_bucket_reso)."}),
                "bucket_max": ("INT", {"default": 1024, "min": 64, "max": 4096, "step": 8,
                                       "tooltip": "buckets: largest bucket side (kohya max_bucket_reso)."}),
                "bucket_step": ("INT", {"default": 64, "min": 8, "max": 256, "step": 8,
                                        "tooltip": "buckets: bucket sides are multiples of this (kohya "
                                                   "bucket_reso_steps)."}),
                "no_upscale": ("BOOLEAN", {"default": False,
                                           "tooltip": "buckets: never enlarge an image; small images get their "
                                                      "own bucket (kohya bucket_no_upscale)."}),
                "split_oversized": ("BOOLEAN", {"default": False,
                                                "tooltip": "Cut images much wider/taller than the target into "
                                                           "overlapping tiles (A1111)."}),
                "split_threshold": _unit(0.5, "Split when the aspect ratio (short/long, relative to the target) "
                                              "is at most this."),
                "split_overlap": _unit(0.2, "How much neighbouring split tiles overlap.", 0.9),
                "focal_crop": ("BOOLEAN", {"default": False,
                                           "tooltip": "Crop non-square images around a focal point found by edges "
                                                      "and entropy (A1111 auto focal point crop)."}),
                "face_weight": _unit(0.9, "Focal crop: how strongly faces pull the crop towards them (A1111's "
                                          "0.9). No face detector ships with this pack yet, so faces are not "
                                          "found and the report says so; entropy and edges decide."),
                "entropy_weight": _unit(0.15, "Focal crop: weight of the most detailed region."),
                "edges_weight": _unit(0.5, "Focal crop: weight of corners and edges."),
                "auto_size": ("BOOLEAN", {"default": False,
                                          "tooltip": "Centre-crop each image to an automatically chosen size within "
                                                     "the bounds below (A1111 auto-sized crop)."}),
                "auto_size_min_dim": _size(384, "Auto size: smallest width/height."),
                "auto_size_max_dim": _size(768, "Auto size: largest width/height."),
                "auto_size_min_area": ("INT", {"default": 64 * 64, "min": 64 * 64, "max": 2048 * 2048,
                                               "tooltip": "Auto size: smallest area in pixels."}),
                "auto_size_max_area": ("INT", {"default": 640 * 640, "min": 64 * 64, "max": 2048 * 2048,
                                               "tooltip": "Auto size: largest area in pixels."}),
                "auto_size_objective": (list(OBJECTIVES), {
                    "default": "maximize_area",
                    "tooltip": "Auto size: prefer the largest area, or the smallest aspect error."}),
                "auto_size_error_threshold": ("FLOAT", {
                    "default": 0.1, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "Auto size: largest aspect error allowed; images with no fitting size get no "
                               "output (as A1111)."}),
                "caption_separator": ("STRING", {"default": " ",
                                                 "tooltip": "Text between the caption and caption_text (A1111 uses "
                                                            "a space)."}),
                "on_bad_file": (["skip and report", "fail"], {
                    "default": "skip and report",
                    "tooltip": "An image that cannot be read: skip it (listed in the report) or stop."}),
                "workers": ("INT", {"default": 0, "min": 0, "max": MAX_WORKERS,
                                    "tooltip": "Threads for decoding and writing; 0 = automatic (up to 8)."}),
                "preview_count": ("INT", {"default": 8, "min": 0, "max": 64,
                                          "tooltip": "How many processed images the preview output shows."}),
                "upscale_model": ("UPSCALE_MODEL", {
                    "tooltip": "Optional (from Load Upscale Model): images smaller than the target are enlarged "
                               "with this model before crop/fit, instead of resampled (the guide's 'AI upscale "
                               "small images'). Needs output_directory."}),
                "keep_alpha": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Write images that have transparency as RGBA PNGs (alpha moved with every crop/"
                               "flip/split, colours under it kept) for Training Options' alpha_loss_weight. Off "
                               "(default, as A1111): written on white as RGB, so runs without alpha_loss_weight "
                               "learn exactly what they did. Only with output_directory."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, existing_caption=None):
        return accept_renamed(caption_action, existing_caption)  # A1111's prepend/append in saved workflows

    def run(self, dataset, output_directory="", preview_count=8, upscale_model=None, **settings):
        config = PreprocessConfig(output_directory=resolve_output_directory(output_directory), **settings)
        upscale = upscaling.model_upscaler(upscale_model) if upscale_model is not None else None
        result = preprocess(dataset, config, progress=HostProgress(), should_cancel=feedback.interrupted,
                            upscale=upscale)
        if result.cancelled:
            feedback.raise_if_interrupted()
        logger.info("%s", result.report.splitlines()[0])
        preview = preview_tensor(result.dataset, preview_count)
        return {"ui": {"text": [result.report]}, "result": (result.dataset, result.report, preview)}
