"""Named errors of the WD14 tagger core; each message names the file or input and the fix."""
from __future__ import annotations

INSTALL_HINT = (
    "Install it into the Python that runs ComfyUI: `pip install onnxruntime` "
    "(CPU), or `pip install onnxruntime-gpu` for CUDA. Do not install both packages at once."
)


class TaggerDependencyError(ImportError):
    """onnxruntime is missing or fails to import (e.g. a DLL load failure on Windows)."""


class TaggerFilesMissingError(FileNotFoundError):
    """A tagger's model.onnx or its tags CSV is not where it should be."""


class TaggerModelError(ValueError):
    """The .onnx or .csv exists but is unusable: corrupt, wrong layout or mismatched sizes."""


class TaggerDownloadError(OSError):
    """A download failed; the message says where to put the two files by hand."""
