"""HypernetworkLoadDataset: scan a folder of images and captions into an HN_DATASET."""
from __future__ import annotations

import logging

from ..hypernet.data.fingerprint import folder_fingerprint
from ..hypernet.data.load import LoadResult, load_dataset, scan_depth
from ..hypernet.data.dataset_preview import preview_tensor
from ..hypernet.data.sidecar import with_editor_edits
from .host import feedback, paths
from .sockets import CATEGORY_DATASET, HN_DATASET

logger = logging.getLogger(__name__)

ON_BAD_FILE_CHOICES = ["skip and report", "fail"]
MISSING_CAPTION_CHOICES = ["empty", "filename"]


class HostProgress:
    """A `progress(done, total)` callback that opens the node's bar once the total is known."""

    def __init__(self) -> None:
        self._bar: feedback.Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None or self._bar.total != max(1, int(total)):
            self._bar = feedback.Progress(total)
        self._bar.update(done)


class HypernetworkLoadDataset:
    DESCRIPTION = ("Scans a folder of training images and their caption files into a dataset (pixels are read "
                   "later, when needed); broken files are skipped and listed in the report.")
    CATEGORY = CATEGORY_DATASET
    RETURN_TYPES = (HN_DATASET, "STRING", "IMAGE")
    RETURN_NAMES = ("dataset", "report", "preview")
    OUTPUT_TOOLTIPS = ("The dataset: one entry per usable image with its caption and repeats.",
                       "What was loaded, skipped (and why) and ignored.",
                       "The first images of the dataset, for a quick look.")
    OUTPUT_NODE = True
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "directory": ("STRING", {"default": "",
                                         "tooltip": "The image folder: an absolute path, or a path relative to "
                                                    "ComfyUI's input folder."}),
                "recursive": ("BOOLEAN", {"default": False, "tooltip": "Also load images from all subfolders."}),
                "caption_extension": ("STRING", {"default": ".txt",
                                                 "tooltip": "Captions are read from <image name><extension> "
                                                            "next to each image."}),
                "repeats_from_folder_names": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "kohya layout: images in a subfolder named 'N_name' are repeated N times per "
                               "epoch (subfolders are then scanned one level deep)."}),
                "on_bad_file": (ON_BAD_FILE_CHOICES, {
                    "default": "skip and report",
                    "tooltip": "Unreadable, truncated or oversized images: skip them (listed in the report) "
                               "or stop with an error."}),
                "missing_caption": (MISSING_CAPTION_CHOICES, {
                    "default": "empty",
                    "tooltip": "Caption for an image without a caption file: empty, or its file name "
                               "(A1111's [filewords])."}),
                "preview_count": ("INT", {"default": 8, "min": 0, "max": 64,
                                          "tooltip": "How many images the preview output shows."}),
            },
            "optional": {
                "filename_word_regex": ("STRING", {
                    "default": "",
                    "tooltip": "For file-name captions: keep only the words this regex matches "
                               "(A1111's 'Filename word regex'); empty keeps the whole name."}),
                "filename_join": ("STRING", {"default": " ",
                                             "tooltip": "For file-name captions: text joining the kept words."}),
                "verify": (["fast", "full"], {
                    "default": "fast",
                    "tooltip": "fast reads image headers; full decodes every image to catch truncated files "
                               "(slower)."}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, directory="", recursive=False, caption_extension=".txt", repeats_from_folder_names=False,
                   **_):
        """ComfyUI reuses outputs while the inputs are unchanged; a changed folder must be rescanned."""
        try:
            root = paths.resolve_user_directory(directory)
        except ValueError:
            return "invalid"
        if not root.is_dir():
            return f"missing:{root}"
        depth = scan_depth(bool(recursive), bool(repeats_from_folder_names))
        return folder_fingerprint(root, depth, caption_extension or ".txt")

    def load(self, directory, recursive, caption_extension, repeats_from_folder_names, on_bad_file,
             missing_caption, preview_count, filename_word_regex="", filename_join=" ", verify="fast"):
        root = paths.resolve_user_directory(directory)
        result: LoadResult = load_dataset(
            root, recursive=recursive, caption_extension=caption_extension,
            repeats_from_folder_names=repeats_from_folder_names, on_bad_file=on_bad_file,
            missing_caption=missing_caption, filename_word_regex=filename_word_regex,
            filename_join=filename_join, verify=verify, progress=HostProgress(),
            should_cancel=feedback.interrupted)
        if result.cancelled:
            feedback.raise_if_interrupted()
        dataset, report = with_editor_edits(result.dataset, result.report)
        logger.info("%s", report.splitlines()[0])
        preview = preview_tensor(dataset, preview_count)
        return {"ui": {"text": [report]}, "result": (dataset, report, preview)}
