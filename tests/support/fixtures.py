"""pytest fixtures for the real ComfyUI host: a server per session, and the host in-process.

Loaded from tests/conftest.py as a plugin. Nothing here mocks ComfyUI: the server is the host's
own `main.py`, and the in-process fixture imports the host's own modules.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

from .pack_files import load_by_path
from .server import ComfyServer, ServerLayout, python_for_tests

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_PROCESS_PACK_NAME = "hn_pack"


def _hostenv():
    return load_by_path("hn_hostenv", "scripts/hostenv.py")


@pytest.fixture(scope="session")
def host_path() -> Path:
    """The ComfyUI folder under test (COMFYUI_PATH, the install folder, or the pinned host)."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env)
    host, _ = _hostenv().resolve_host(provision=True)
    return host


@pytest.fixture(scope="session")
def comfy_server(host_path, tmp_path_factory):
    """One real host server for the whole session, with the pack and the test nodes loaded."""
    layout = ServerLayout(tmp_path_factory.mktemp("comfy"))
    server = ComfyServer(host_path, python_for_tests(), layout)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "comfy_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("comfy_server")
        if server is not None:
            report.sections.append(("ComfyUI server log (tail)", server.log(8000)))


def _import_host(host: Path) -> None:
    """Import the host's modules in this process with the same flags as the test server."""
    if "comfy.model_management" in sys.modules:
        return
    sys.path.insert(0, str(host))
    import comfy.options

    comfy.options.enable_args_parsing()
    saved_argv = sys.argv
    sys.argv = [saved_argv[0], "--cpu", "--use-pytorch-cross-attention"]
    try:
        import comfy.cli_args  # noqa: F401  (parses the flags above once)
        import comfy.model_management  # noqa: F401
    finally:
        sys.argv = saved_argv


def _load_builtin_extra_nodes(host_nodes) -> None:
    """The host's comfy_extras nodes (e.g. the stock HypernetworkLoader), on either host API."""
    if hasattr(host_nodes, "init_builtin_extra_nodes"):  # current ComfyUI: async loader
        import asyncio

        asyncio.run(host_nodes.init_builtin_extra_nodes())
    else:  # the pinned 2024 host
        host_nodes.init_custom_nodes()


def _load_pack(name: str) -> types.ModuleType:
    """Load the pack the way the host's custom-node loader does: a package from its folder."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(REPO_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def comfy_host(host_path, tmp_path_factory):
    """The host imported in this process, the pack loaded as a custom node, and the tiny models.

    Returns a namespace: `pack` (the pack package), `nodes` (the host's nodes module),
    `folder_paths`, `tiny` (the tiny model builder) and `models_dir` (a temp models folder
    registered for hypernetworks).
    """
    _import_host(host_path)
    import folder_paths
    import nodes as host_nodes

    models_dir = tmp_path_factory.mktemp("inproc_models")
    (models_dir / "hypernetworks").mkdir()
    # First in the list, so that everything the pack writes lands in this temp folder, never in the
    # host's own models folder.
    folder_paths.folder_names_and_paths["hypernetworks"][0].insert(0, str(models_dir / "hypernetworks"))
    folder_paths.set_output_directory(str(models_dir / "output"))
    folder_paths.set_temp_directory(str(models_dir / "temp"))
    user_dir = str(models_dir / "user")  # the latent disk cache lives under the user folder
    if hasattr(folder_paths, "set_user_directory"):
        folder_paths.set_user_directory(user_dir)
    else:  # the pinned 2024 host has only the module attribute
        folder_paths.user_directory = user_dir
    if "HypernetworkLoader" not in host_nodes.NODE_CLASS_MAPPINGS:
        _load_builtin_extra_nodes(host_nodes)
    pack = _load_pack(IN_PROCESS_PACK_NAME)
    tiny_spec = importlib.util.spec_from_file_location(
        "hn_test_tiny_models", REPO_ROOT / "tests" / "support" / "hn_test_nodes" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(tiny_spec)
    tiny_spec.loader.exec_module(tiny)
    tiny.register_tiny_configs()
    return types.SimpleNamespace(pack=pack, nodes=host_nodes, folder_paths=folder_paths, tiny=tiny,
                                 models_dir=models_dir, path=host_path)
