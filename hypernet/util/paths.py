"""The one resolution of a folder the user typed, and the one containment check for resolved
paths (symlink escapes, folders the user chose)."""
from __future__ import annotations

import os
from pathlib import Path


def user_folder(text: str, base: Path) -> Path:
    """The folder a user typed, as LoadDataset, Preprocess and the dataset editor read it: `~` is
    the home folder; an absolute path is used as given; anything else is relative to `base`."""
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else base / path


def climbs_out(text: str) -> bool:
    """True when a relative folder the user typed uses '..' (and so may leave its base folder)."""
    path = Path(text.strip()).expanduser()
    return not path.is_absolute() and ".." in path.parts


def is_within(real: str, root_real: str, *, include_root: bool = True) -> bool:
    """True when the resolved path `real` is below the resolved folder `root_real` (or is that
    folder itself, with `include_root`). Both must already be `os.path.realpath` results."""
    if real == root_real:
        return include_root
    return real.startswith(root_real.rstrip(os.sep) + os.sep)
