"""`hypernet/` is the pure core: it must never import ComfyUI, and only import itself relatively."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.pack_files import REPO_ROOT

CORE = REPO_ROOT / "hypernet"
FORBIDDEN = {"comfy", "comfy_extras", "folder_paths", "server", "nodes", "execution", "latent_preview",
             "comfy_execution", "app"}
MODULES = sorted(CORE.rglob("*.py"))


def imported_roots(tree: ast.AST) -> list[tuple[int, str, int]]:
    """(line, top-level module name, relative level) for every import in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, (node.module or "").split(".")[0], node.level))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_does_not_import_the_host(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [(line, name) for line, name, level in imported_roots(tree) if level == 0 and name in FORBIDDEN]
    assert not bad, f"{path.name} imports the host ({bad}); move that code into nodes/host/"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_imports_itself_relatively(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    absolute_self = [line for line, name, level in imported_roots(tree) if level == 0 and name == "hypernet"]
    assert not absolute_self, f"{path.name} imports `hypernet` absolutely at lines {absolute_self}; use `from .x`"
    escaping = [line for line, _, level in imported_roots(tree) if level > 1 + len(path.relative_to(CORE).parts) - 1]
    assert not escaping, f"{path.name} imports from outside hypernet/ at lines {escaping}"


def test_boundary_check_catches_a_host_import():
    tree = ast.parse("import os\nfrom comfy import model_management\nimport folder_paths as fp\n")
    names = {name for _, name, level in imported_roots(tree) if level == 0}
    assert {"comfy", "folder_paths"} <= names & FORBIDDEN


# Which sub-packages of the core each one may import: util at the bottom, no cycles.
LAYERS = {
    "util": set(),
    "network": {"util"},
    "data": {"util"},
    "grid": {"util"},
    "graph": set(),
    "tagger": {"data", "util"},
    "preprocess": {"data", "util"},
    "train": {"network", "data", "grid", "util"},
}


def sibling_packages(path: Path) -> set[str]:
    """The core sub-packages a module inside one of them imports (`from ..other.x import`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.module.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module}


def test_core_is_sub_packages_with_docstrings():
    flat = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules directly in hypernet/ ({flat}); put each in the sub-package that owns it"
    packages = {p.parent.name for p in CORE.glob("*/__init__.py")}
    assert packages == set(LAYERS), f"sub-packages {sorted(packages)} differ from LAYERS {sorted(LAYERS)}"
    for name in packages:
        doc = ast.get_docstring(ast.parse((CORE / name / "__init__.py").read_text()))
        assert doc, f"hypernet/{name}/__init__.py needs a docstring saying what it owns"


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent != CORE], ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_sub_package_imports_only_lower_layers(path: Path):
    package = path.parent.name
    extra = sibling_packages(path) - LAYERS[package]
    assert not extra, f"{path.relative_to(CORE)} imports {sorted(extra)}; {package} may import only {sorted(LAYERS[package])}"


def test_layer_check_catches_an_upward_import(tmp_path):
    module = tmp_path / "x.py"
    module.write_text("from ..train.trainer import Trainer\nfrom .y import z\n")
    assert sibling_packages(module) - LAYERS["data"] == {"train"}


# ------------------------------------------------------------------ nodes/: one adapter package to the host

NODES = CORE.parent / "nodes"
HOST = NODES / "host"
HOST_PACKAGE = sorted(HOST.glob("*.py"))
NODE_MODULES = sorted(NODES.glob("*.py"))
HOST_MODULES = FORBIDDEN  # comfy, folder_paths, server, nodes, comfy_execution, execution, latent_preview, ...
# Attributes of host objects (ModelPatcher, VAE, BaseModel) that only the adapter may touch.
HOST_ATTRIBUTES = {"patcher", "model_options", "first_stage_model", "cond_stage_model", "diffusion_model",
                   "model_sampling", "load_device", "offload_device", "current_loaded_models"}


def host_attributes(tree: ast.AST) -> list[tuple[int, str]]:
    return [(node.lineno, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in HOST_ATTRIBUTES]


def adapter_internals(tree: ast.AST) -> list[tuple[int, str]]:
    """Private names (`_x`) of the adapter's modules a node module uses (`from .host import sampling`
    then `sampling._x`, or `from .host.sampling import _x`)."""
    adapter = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == "host"
               for alias in node.names}
    found = [(node.lineno, f"{node.value.id}.{node.attr}") for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr.startswith("_") and isinstance(node.value, ast.Name)
             and node.value.id in adapter]
    found += [(node.lineno, alias.name) for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.level == 1 and (node.module or "").startswith("host.")
              for alias in node.names if alias.name.startswith("_")]
    return found


def test_the_adapter_package_exists_and_imports_the_host():
    imported = {name for path in HOST_PACKAGE for _, name, level in imported_roots(ast.parse(path.read_text()))
                if level == 0}
    assert imported & HOST_MODULES
    assert not (NODES / "bridge.py").exists(), "the adapter is the nodes/host/ package now"


@pytest.mark.parametrize("path", NODE_MODULES, ids=lambda p: p.name)
def test_only_the_adapter_imports_the_host(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [(line, name) for line, name, level in imported_roots(tree) if level == 0 and name in HOST_MODULES]
    assert not bad, f"nodes/{path.name} imports ComfyUI modules {bad}; go through nodes/host/"


@pytest.mark.parametrize("path", NODE_MODULES, ids=lambda p: p.name)
def test_only_the_adapter_reaches_into_host_objects(path: Path):
    bad = host_attributes(ast.parse(path.read_text(), filename=str(path)))
    assert not bad, f"nodes/{path.name} touches host internals {bad}; add a function for it in nodes/host/"


@pytest.mark.parametrize("path", NODE_MODULES, ids=lambda p: p.name)
def test_node_modules_use_only_the_adapters_public_names(path: Path):
    bad = adapter_internals(ast.parse(path.read_text(), filename=str(path)))
    assert not bad, f"nodes/{path.name} uses private names of nodes/host/ {bad}; make them public there"


def test_adapter_internals_check_catches_a_private_name():
    tree = ast.parse("from .host import training\nfrom .host.sampling import _x\ntraining._block_norms(m)\n")
    assert {name for _, name in adapter_internals(tree)} == {"training._block_norms", "_x"}


def test_the_attention_patch_is_registered_in_one_place():
    """The host's attn1/attn2 patch registration is written once (nodes/host/patches.py)."""
    users = sorted(path.relative_to(NODES).as_posix() for path in NODES.rglob("*.py")
                   if "set_model_attn1_patch" in path.read_text() or "set_model_attn2_patch" in path.read_text())
    assert users == ["host/patches.py"]
    assert "def set_attention_patch" in (HOST / "patches.py").read_text()


def test_host_attribute_check_catches_a_patcher_access():
    tree = ast.parse("samples = sampling.sample(training_model.patcher, 1)\nvae.first_stage_model.to('cpu')\n")
    assert {name for _, name in host_attributes(tree)} == {"patcher", "first_stage_model"}
