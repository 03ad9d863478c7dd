"""HypernetworkWD14Tag: WD14 (SmilingWolf) tags for a dataset and/or an IMAGE batch.

The tagging itself is `hypernet.tagger` (`dataset.tag_dataset` for a dataset); this module picks
or downloads the model through the host's model folders and reports progress to the host.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..hypernet.data.dataset import Dataset
from ..hypernet.tagger.dataset import captioned_dataset, format_report, tag_dataset
from ..hypernet.tagger.pipeline import (
    CAPTION_MODES,
    KNOWN_TAGGERS,
    SORT_MODES,
    TaggerFiles,
    TagOptions,
    TagResult,
    available_providers,
    caption_path_for,
    count_tags,
    download_tagger,
    find_taggers,
    list_taggers,
    load_tagger,
    merge_caption,
    resolve_tagger,
    tag_image_files,
    tag_images,
    unload,
    validate_caption_mode,
    write_caption,
)
from .host import feedback, paths
from .dataset import HostProgress
from .legacy_values import accept_renamed
from .sockets import CATEGORY_DATASET, HN_DATASET

logger = logging.getLogger(__name__)

DOWNLOAD_PREFIX = "(download) "


def tagger_folders() -> list[Path]:
    paths.register_model_folders()
    return paths.model_folders(paths.TAGGER_FOLDER)


def model_choices() -> list[str]:
    """Installed taggers, then every known tagger as '(download) name'.

    The download entries stay listed after the download (they then use the local copy), so a saved
    workflow that names one keeps validating.
    """
    return list_taggers(tagger_folders()) + [DOWNLOAD_PREFIX + name for name in KNOWN_TAGGERS]


class _DownloadProgress:
    """download_tagger's (file, bytes done, total) callback -> the node's bar in percent; checks Cancel."""

    def __init__(self) -> None:
        self._bar = feedback.Progress(100)

    def __call__(self, label: str, done: int, total: int | None) -> None:
        feedback.raise_if_interrupted()
        if total:
            self._bar.update(int(100 * done / total))


def resolve_model(choice: str) -> TaggerFiles:
    """The two files of the chosen tagger; a '(download) name' entry downloads it if it is missing."""
    folders = tagger_folders()
    if not choice.startswith(DOWNLOAD_PREFIX):
        return resolve_tagger(choice, folders)
    name = choice[len(DOWNLOAD_PREFIX):]
    if name not in KNOWN_TAGGERS:
        raise ValueError(f"model: {choice!r} is not a known tagger; pick one from the list")
    found = find_taggers(folders)
    if name in found:
        return found[name]
    if not folders:
        raise FileNotFoundError("ComfyUI has no 'wd14_tagger' model folder registered; add one in "
                                "extra_model_paths.yaml or create models/wd14_tagger")
    logger.info("WD14 tagger %s is not installed; downloading it into %s", name, folders[0])
    return download_tagger(name, folders[0], progress=_DownloadProgress())


def _progress():
    bar = HostProgress()

    def update(done: int, total: int) -> None:
        bar(done, total)
        feedback.raise_if_interrupted()

    return update


def output_caption_mode(write_captions: str, keep_captions: bool) -> str:
    """How the output dataset's captions combine the user's caption and the tags: as the files are
    written, or with no file written, appended to the user's caption unless keep_captions is off."""
    if write_captions == "off" and keep_captions:
        return "existing_first"
    return write_captions


class HypernetworkWD14Tag:
    DESCRIPTION = ("Tags images with a WD14 (SmilingWolf) ONNX tagger: a whole dataset and/or an image batch. "
                   "A '(download) ...' model is downloaded from Hugging Face the first time it runs (once; "
                   "then it is read from models/wd14_tagger). By default the tags are added after the captions "
                   "you wrote (keep_captions) and no caption file is written (write_captions off).")
    CATEGORY = CATEGORY_DATASET
    RETURN_TYPES = (HN_DATASET, "STRING")
    RETURN_NAMES = ("dataset", "tags")
    OUTPUT_IS_LIST = (False, True)
    OUTPUT_TOOLTIPS = ("The dataset with the tags as captions (per write_captions); empty without a dataset input.",
                       "One tag string per image: the image input's images first, then the dataset's.")
    OUTPUT_NODE = True
    FUNCTION = "tag"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_choices(), {
                    "tooltip": "A tagger from the wd14_tagger model folders (<name>.onnx + <name>.csv), or "
                               "'(download) name' to fetch it from Hugging Face into the first such folder."}),
                "general_threshold": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 1.0, "step": 0.05,
                                                "tooltip": "Keep general tags at least this confident."}),
                "character_threshold": ("FLOAT", {"default": 0.85, "min": 0.0, "max": 1.0, "step": 0.05,
                                                  "tooltip": "Keep character tags at least this confident."}),
                "exclude_tags": ("STRING", {"default": "",
                                            "tooltip": "Comma-separated tags never to output."}),
                "replace_underscores": ("BOOLEAN", {"default": True,
                                                    "tooltip": "long_hair -> long hair (emoticons such as ^_^ kept)."}),
                "escape_brackets": ("BOOLEAN", {"default": True,
                                                "tooltip": "Write ( ) as \\( \\) so prompts do not read them as "
                                                           "weights."}),
                "sort": (list(SORT_MODES), {"default": "confidence",
                                            "tooltip": "Tag order: most confident first, alphabetical, or the "
                                                       "model's own order."}),
                "characters_first": ("BOOLEAN", {"default": True,
                                                 "tooltip": "Put character tags before general tags."}),
                "include_rating": ("BOOLEAN", {"default": False,
                                               "tooltip": "Add the most likely rating (general, sensitive, ...)."}),
                "max_tags": ("INT", {"default": 0, "min": 0, "max": 1000,
                                     "tooltip": "Keep at most this many tags per image; 0 = no limit."}),
                "write_captions": (list(CAPTION_MODES), {
                    "default": "off",
                    "tooltip": "Caption files next to the dataset's images: off (write none; keep_captions decides "
                               "the captions), overwrite, existing_first (your caption, then the new tags) or "
                               "new_first (the new tags, then your caption; duplicates dropped), only_missing. The "
                               "output dataset's captions follow the same choice."}),
                "batch_size": ("INT", {"default": 4, "min": 1, "max": 64,
                                       "tooltip": "Images per tagger run (more is faster, needs more memory)."}),
                "unload_after": ("BOOLEAN", {"default": False,
                                             "tooltip": "Free the tagger model after this run (else it stays "
                                                        "loaded for the next run)."}),
            },
            "optional": {
                "dataset": (HN_DATASET, {"tooltip": "Tag every image of this dataset (from Load Dataset or "
                                                    "Preprocess)."}),
                "image": ("IMAGE", {"tooltip": "Tag the images of this batch."}),
                "caption_extension": ("STRING", {"default": ".txt",
                                                 "tooltip": "Extension of the caption files written."}),
                "keep_captions": ("BOOLEAN", {"default": True,
                                              "tooltip": "With write_captions off: on keeps the captions you "
                                                         "wrote and adds the tags after them (duplicates "
                                                         "dropped); off replaces them by the tags. No file is "
                                                         "written either way."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, write_captions=None):
        return accept_renamed(validate_caption_mode, write_captions)  # append/prepend in saved workflows

    def tag(self, model, general_threshold, character_threshold, exclude_tags, replace_underscores,
            escape_brackets, sort, characters_first, include_rating, max_tags, write_captions, batch_size,
            unload_after, dataset=None, image=None, caption_extension=".txt", keep_captions=True):
        write_captions = validate_caption_mode(write_captions)
        if dataset is None and image is None:
            raise ValueError("WD14 Tagger: nothing to tag; connect a dataset (Load Dataset / Preprocess) "
                             "and/or an image")
        options = TagOptions(general_threshold=general_threshold, character_threshold=character_threshold,
                             exclude_tags=exclude_tags, replace_underscores=replace_underscores,
                             escape_brackets=escape_brackets, sort=sort, characters_first=characters_first,
                             include_rating=include_rating, max_tags=max_tags)
        available_providers()  # a missing onnxruntime fails here, before any download
        files = resolve_model(model)
        tagger = load_tagger(files)
        try:
            image_results = (tag_images(tagger, list(image), options, batch_size=batch_size, progress=_progress())
                             if image is not None else [])
            dataset_results = (tag_dataset(tagger, dataset, options, batch_size, write_captions, caption_extension,
                                           progress=_progress())
                               if dataset is not None else [])
        finally:
            if unload_after:
                unload(str(files.model_path))
        history = {"step": "wd14_tag", "model": files.name, "write_captions": write_captions, **options.to_dict()}
        history["keep_captions"] = keep_captions
        out = (captioned_dataset(dataset, dataset_results, output_caption_mode(write_captions, keep_captions),
                                 history)
               if dataset is not None else Dataset([], "", [history]))
        report = format_report(files.name, image_results, dataset_results, write_captions, keep_captions)
        logger.info("%s", report.splitlines()[0])
        strings = [r.caption for r in image_results] + [r.caption for r in dataset_results]
        return {"ui": {"text": [report]}, "result": (out, strings)}
