"""Images the pack saves: SaveImage-style targets in the output folder (XY grid), UI images in temp."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import folder_paths


def save_image_target(filename_prefix: str, width: int, height: int) -> tuple[Path, str, int, str]:
    """Where SaveImage would write its next image for `filename_prefix`: (folder, file stem, counter, subfolder).

    The prefix may name a subfolder of the output folder ('grids/xy'), never a path outside it.
    """
    text = (filename_prefix or "").strip()
    if not text or os.path.isabs(text) or ".." in Path(text).parts:
        raise ValueError(f"filename_prefix: {filename_prefix!r} is invalid; give a name such as 'xy_grid' "
                         "or 'grids/xy' inside the output folder")
    try:
        folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(
            text, folder_paths.get_output_directory(), width, height)
    except OSError as exc:  # e.g. a file where the prefix's subfolder should be
        raise ValueError(f"filename_prefix: {filename_prefix!r} cannot be used ({exc.strerror or exc}: "
                         f"{exc.filename or ''}); choose another name or subfolder") from None
    return Path(folder), stem, int(counter), subfolder


def metadata_enabled() -> bool:
    """False when the host runs with --disable-metadata (then no prompt/workflow goes into PNGs)."""
    from comfy.cli_args import args

    return not getattr(args, "disable_metadata", False)


def save_ui_image(image: Any, prefix: str) -> dict:
    """Save a PIL image into the host's temp folder (served by /view) and return the UI entry."""
    from ...hypernet.util.atomic import atomic_path

    folder = Path(folder_paths.get_temp_directory())
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in prefix) or "image"
    index = len(list(folder.glob(f"{safe}_*.png")))
    while (folder / f"{safe}_{index:05d}.png").exists():
        index += 1
    target = folder / f"{safe}_{index:05d}.png"
    with atomic_path(target) as tmp:
        image.save(tmp, format="PNG")
    return {"filename": target.name, "subfolder": "", "type": "temp"}
