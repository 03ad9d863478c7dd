"""Train a hypernetwork run file headless, on one process or under torchrun:

    python scripts/train_run.py RUN.run.json --comfyui ~/ComfyUI
    torchrun --nproc_per_node 8 scripts/train_run.py RUN.run.json --comfyui ~/ComfyUI

ComfyUI is used as a library (no server): this script puts the host on sys.path, gives it its
command-line flags (unknown arguments go to ComfyUI, e.g. --cpu or --output-directory), loads
the pack as the host's custom-node loader does, and runs `nodes/headless.py`. See
docs/distributed.md.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_MODULE = "comfyui_hypernetwork"


def host_folder(given: Path | None) -> Path:
    candidates = [given, os.environ.get("COMFYUI_PATH"), PACK_ROOT.parent.parent]
    for candidate in candidates:
        if candidate and (Path(candidate) / "comfy" / "model_management.py").is_file():
            return Path(candidate).resolve()
    sys.exit("train_run.py: ComfyUI was not found; give its folder with --comfyui or COMFYUI_PATH")


def start_host(folder: Path, flags: list[str]) -> None:
    """Import the host with its own flag parser, as main.py would."""
    sys.path.insert(0, str(folder))
    import comfy.options

    comfy.options.enable_args_parsing()
    saved, sys.argv = sys.argv, [sys.argv[0], *flags]
    try:
        import comfy.cli_args  # noqa: F401  (parses the flags once)
        import comfy.model_management  # noqa: F401
    finally:
        sys.argv = saved
    extra = folder / "extra_model_paths.yaml"
    if extra.is_file():
        import folder_paths  # noqa: F401
        try:
            from utils.extra_config import load_extra_path_config
        except ImportError:
            from main import load_extra_path_config
        load_extra_path_config(str(extra))


def load_pack():
    spec = importlib.util.spec_from_file_location(PACK_MODULE, PACK_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    sys.path.insert(0, str(PACK_ROOT))
    import torch

    # The argument parser lives with the runner; it imports nothing of the host.
    spec = importlib.util.spec_from_file_location("hn_headless_args", PACK_ROOT / "nodes" / "headless_args.py")
    args_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(args_module)
    args = args_module.parse_args(sys.argv[1:])
    flags = list(args.host_args)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if args.cpu or not torch.cuda.is_available():
        flags.append("--cpu")
        device = torch.device("cpu")
    else:
        torch.cuda.set_device(local_rank)  # before the host picks its device: one GPU per rank
        device = torch.device("cuda", local_rank)
    start_host(host_folder(args.comfyui), flags)
    pack = load_pack()
    from importlib import import_module

    headless = import_module(f"{pack.__name__}.nodes.headless")
    return headless.main(args, device)


if __name__ == "__main__":
    sys.exit(main())
