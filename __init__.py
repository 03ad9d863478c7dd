"""comfyui-hypernetwork: create, train, apply and compare hypernetworks in ComfyUI.

This file only wires the pack into ComfyUI. Importing it is cheap and never fails because an
optional dependency (onnxruntime for the WD14 tagger) is missing.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
