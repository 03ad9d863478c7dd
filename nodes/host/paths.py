"""The host's folders: model folders (hypernetworks, wd14_tagger), input/output/user folders."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import folder_paths

from ...hypernet.util.names import safe_relative_name, shown
from ...hypernet.util.paths import user_folder

logger = logging.getLogger(__name__)


HYPERNETWORK_FOLDER = "hypernetworks"


TAGGER_FOLDER = "wd14_tagger"


HYPERNETWORK_EXTENSIONS = (".pt", ".safetensors")


TAGGER_EXTENSIONS = (".onnx", ".csv")


def register_model_folders() -> None:
    """Register the `wd14_tagger` model folder (`models/wd14_tagger`) if the host lacks it.

    extra_model_paths.yaml may already have added paths under that name (with no extensions);
    the default folder and our extensions are merged in, never replacing what is there.
    """
    default = os.path.join(folder_paths.models_dir, TAGGER_FOLDER)
    entry = folder_paths.folder_names_and_paths.get(TAGGER_FOLDER)
    if entry is None:
        folder_paths.folder_names_and_paths[TAGGER_FOLDER] = ([default], set(TAGGER_EXTENSIONS))
        return
    paths, extensions = entry
    if default not in paths:
        paths.append(default)
    if isinstance(extensions, set):
        extensions.update(TAGGER_EXTENSIONS)


def model_folders(kind: str) -> list[Path]:
    """Every folder registered for `kind` (e.g. "hypernetworks", "wd14_tagger"), in host order."""
    try:
        return [Path(p) for p in folder_paths.get_folder_paths(kind)]
    except KeyError:
        return []


def hypernetwork_files(extensions: tuple[str, ...] = HYPERNETWORK_EXTENSIONS) -> list[str]:
    """Relative names ('sub/name.pt') of every hypernetwork file in the hypernetwork folders
    (`extensions` adds e.g. `.hns` compositions)."""
    names = set()
    for folder in model_folders(HYPERNETWORK_FOLDER):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix.lower() in extensions and path.is_file() and not path.name.startswith("."):
                names.add(path.relative_to(folder).as_posix())
    return sorted(names, key=str.lower)


def resolve_in_folders(name: str, kind: str) -> Path:
    """Absolute path of `name` inside the folders registered for `kind`.

    Refuses names that escape the folders (absolute paths, `..`); raises FileNotFoundError naming
    the folders searched when the file is not there.
    """
    try:
        safe_relative_name(name, f"{kind} file")
    except ValueError as exc:
        raise ValueError(f"{exc} (it must be a name inside the {kind} folders)") from None
    folders = model_folders(kind)
    for folder in folders:
        try:
            candidate = (folder / name).resolve()
            if candidate.is_file() and folder.resolve() in candidate.parents:
                return candidate
        except OSError as exc:  # e.g. a symlink loop: not a file we can serve
            logger.warning("%s file %s: %s", kind, shown(name), exc)
    searched = ", ".join(str(f) for f in folders) or "(none registered)"
    raise FileNotFoundError(f"{kind} file {shown(name)} was not found in: {searched}. "
                            f"Put the file there or refresh the node list.")


def default_hypernetwork_folder() -> Path:
    folders = model_folders(HYPERNETWORK_FOLDER)
    if not folders:
        raise FileNotFoundError("ComfyUI has no 'hypernetworks' model folder registered")
    return folders[0]


def input_directory() -> Path:
    return Path(folder_paths.get_input_directory())


def output_directory() -> Path:
    return Path(folder_paths.get_output_directory())


def resolve_user_directory(directory: str, field: str = "directory") -> Path:
    """An absolute folder, or one relative to ComfyUI's input folder."""
    text = (directory or "").strip()
    if not text:
        raise ValueError(f"{field}: empty; give a folder path (absolute, or relative to {input_directory()})")
    return user_folder(text, input_directory())


def use_hypernetwork_folder(folder: Path) -> None:
    """Make `folder` the first hypernetworks folder, where a run writes its files."""
    folder_paths.folder_names_and_paths[HYPERNETWORK_FOLDER][0].insert(0, str(folder))


def user_directory() -> Path:
    """ComfyUI's user folder (settings, workflows), where the pack's user config files live."""
    getter = getattr(folder_paths, "get_user_directory", None)
    if getter is not None:
        return Path(getter())
    return Path(getattr(folder_paths, "user_directory", os.path.join(folder_paths.base_path, "user")))


def latent_cache_folder() -> Path:
    """Where the latent disk cache lives: `<ComfyUI>/user/hypernetwork_latent_cache` (safe to delete)."""
    from ...hypernet.train.latent_store import CACHE_FOLDER_NAME

    return user_directory() / CACHE_FOLDER_NAME
