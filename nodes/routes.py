"""The pack's small JSON API for its frontend: metadata of a hypernetwork file.

GET /hypernetwork/info?name=<name as listed in the hypernetworks combo>
  200 {metadata, warnings} (for a `.hns`: {composition, tree, members, warnings})  400 bad or escaping name  404 no such file  422 not a readable hypernetwork.
GET /hypernetwork/train_layout
  200 {legacy_layouts, nodes}: the Train node's widget layouts of earlier versions and which node
  shows each setting now, from the settings declaration (web/trainLayout.js migrates with it).
Only files inside the registered hypernetwork folders are read (`host.paths.resolve_in_folders`
refuses absolute paths, `..` and symlinks leading out); the answer is metadata, never file bytes.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from ..hypernet.network.composition import to_json
from ..hypernet.network.fileio import optim_path
from ..hypernet.network.health import network_warnings
from ..hypernet.train.settings import layout_document
from . import network_files
from .host import routes

logger = logging.getLogger(__name__)

INFO_ROUTE = "/hypernetwork/info"
TRAIN_LAYOUT_ROUTE = "/hypernetwork/train_layout"


def hypernetwork_info(name: str, path: Path) -> dict[str, Any]:
    """What the Apply node shows about a file: structure, activation, training step, base model."""
    network = network_files.load_file(path)
    config = network.config
    stat = path.stat()
    return {
        "name": name,
        "network_name": network.name,
        "format": path.suffix.lower().lstrip("."),
        "file_size": stat.st_size,
        "modified": stat.st_mtime,
        "layer_structure": [float(m) for m in config.layer_structure],
        "activation_func": config.activation_func,
        "weight_initialization": config.weight_initialization,
        "is_layer_norm": config.is_layer_norm,
        "use_dropout": config.use_dropout,
        "dropout_structure": [float(d) for d in config.dropout_structure],
        "activate_output": config.activate_output,
        "widths": [int(w) for w in network.widths],
        "parameters": int(sum(p.numel() for p in network.parameters())),
        "step": int(network.step),
        "sd_checkpoint": network.sd_checkpoint,
        "sd_checkpoint_name": network.sd_checkpoint_name,
        "optional_info": config.optional_info,
        "has_optimizer_state": optim_path(path).is_file(),
        "warnings": network_warnings(network),
        "load_notes": list(network.load_notes),
    }


def composition_info(name: str, path: Path) -> dict[str, Any]:
    """What the Apply node shows about a `.hns`: the composition and each member's file."""
    composition = network_files.load_composition(name, path)
    stat = path.stat()
    members = []
    for member in composition.members:
        network = member.network
        members.append({
            "name": member.name, "file": member.file, "strength": member.strength,
            "network_name": network.name, "step": int(network.step),
            "widths": [int(w) for w in network.widths],
            "layer_structure": [float(m) for m in network.config.layer_structure],
            "activation_func": network.config.activation_func,
            "warnings": network_warnings(network),
        })
    return {
        "name": name,
        "format": "hns",
        "file_size": stat.st_size,
        "modified": stat.st_mtime,
        "composition": composition.describe(),
        "tree": to_json(composition.root),
        "members": members,
        "widths": [int(w) for w in composition.widths],
        "warnings": [f"{m['name']}: {w}" for m in members for w in m["warnings"]],
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def info_handler(request: web.Request) -> web.Response:
    name = request.rel_url.query.get("name", "")
    if not name or name == "none":
        return _error(400, "name: give a file name from the hypernetworks list, e.g. ?name=my_style.pt")
    try:
        path = network_files.resolve_file(name)
    except ValueError as exc:
        return _error(400, str(exc))
    except FileNotFoundError:
        return _error(404, f"hypernetwork file {name!r} is not in the hypernetworks folders; refresh the list")
    try:
        reader = composition_info if network_files.is_composition(name) else hypernetwork_info
        info = await asyncio.get_running_loop().run_in_executor(None, reader, name, path)
    except (ValueError, OSError) as exc:
        logger.warning("hypernetwork info for %r: %s", name, exc)
        return _error(422, f"{name!r} is not a readable hypernetwork file: {exc}")
    return web.json_response(info)


async def train_layout_handler(request: web.Request) -> web.Response:
    return web.json_response(layout_document())


def register() -> bool:
    """Add the routes to the host server (a no-op when the host runs without one)."""
    added = routes.add_get_route(INFO_ROUTE, info_handler)
    return routes.add_get_route(TRAIN_LAYOUT_ROUTE, train_layout_handler) and added


register()
