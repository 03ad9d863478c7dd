"""The one containment check for resolved paths (symlink escapes, folders the user chose)."""
from __future__ import annotations

import os


def is_within(real: str, root_real: str, *, include_root: bool = True) -> bool:
    """True when the resolved path `real` is below the resolved folder `root_real` (or is that
    folder itself, with `include_root`). Both must already be `os.path.realpath` results."""
    if real == root_real:
        return include_root
    return real.startswith(root_real.rstrip(os.sep) + os.sep)
