"""ComfyUI node classes of the pack: thin nodes over `hypernet/`, registered from one table."""
from __future__ import annotations

import importlib
import importlib.util
import logging

from .catalog import CATALOG

logger = logging.getLogger(__name__)

if importlib.util.find_spec("onnxruntime") is None:
    logger.warning(
        "comfyui-hypernetwork: onnxruntime is not installed, so the WD14 Tagger node cannot run. "
        "Install it with `pip install onnxruntime` (or `onnxruntime-gpu` for CUDA)."
    )


def _load(module_name: str, class_name: str) -> type:
    module = importlib.import_module(f".{module_name}", __package__)
    return getattr(module, class_name)


NODE_CLASS_MAPPINGS = {node_id: _load(module, cls) for node_id, _, module, cls in CATALOG}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: display for node_id, display, _, _ in CATALOG}
from . import routes  # noqa: E402,F401  (registers the GET /hypernetwork/info route)
from . import dataset_routes  # noqa: E402,F401  (registers the dataset editor's routes)
from . import input_check  # noqa: E402

input_check.register(NODE_CLASS_MAPPINGS)  # API prompt values type-checked before the host converts them
