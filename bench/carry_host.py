"""Prepare `.host/` for a GPU machine that has python3 with CUDA torch but no package registry and
no virtual environment: the host's source (the ComfyUI the tests use, without its .git, tests and
screenshots) in `.host/ComfyUI`, and the few pure-Python packages that host imports and such a
machine may lack in `.host/site`. `.host/` is git-ignored; it travels with the checkout when the
run names it (the device tool's `carry`). `bash scripts/bench.sh --gpu` uses it when it is there.

    bash scripts/bench.sh --prepare-gpu        # here, where the tests' environment exists
    bash scripts/bench.sh --gpu                # there: python3 + .host/, nothing installed

Also: `--check` on the GPU machine lists what is missing without running anything.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / ".host"
# Pure-Python packages the pinned host imports that a stock CUDA image often lacks (torchsde for the
# k-diffusion samplers, and its dependency trampoline). Copied from the environment running this.
VENDORED = ("torchsde", "trampoline")
# Imported by the host, the pack or the bench, expected on the GPU machine itself (compiled or large).
EXPECTED = ("torch", "numpy", "PIL", "safetensors", "transformers", "einops", "scipy", "psutil", "yaml", "tqdm",
            "aiohttp", "onnxruntime")
SKIP_TOP = {".git", ".github", "tests", "tests-ui", "models", "output", "input", "temp", "user", "custom_nodes"}
MAX_BYTES = 48 * 1024 * 1024  # the device tool carries 64 MiB with the checkout


def _ignorer(top: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = SKIP_TOP if Path(folder) == top else set()
        return {n for n in names if n in skip or n == "__pycache__" or n.endswith((".png", ".jpg", ".pyc"))}
    return ignore


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare(host: Path, dest: Path) -> dict:
    """Copy `host` and VENDORED into `dest` (replacing an earlier copy made by this script)."""
    if not (host / "main.py").is_file() or not (host / "comfy").is_dir():
        raise SystemExit(f"{host} is not a ComfyUI folder (no main.py / comfy/)")
    marker = dest / ".made-by-carry_host"
    if dest.exists():
        if not marker.is_file():
            raise SystemExit(f"{dest} exists and was not made by this script; move it away first")
        shutil.rmtree(dest)
    site = dest / "site"
    site.mkdir(parents=True)
    marker.write_text(f"host {host}\n")
    shutil.copytree(host, dest / "ComfyUI", ignore=_ignorer(host))
    for folder in ("models", "custom_nodes"):  # the host expects them; the bench brings its own files
        (dest / "ComfyUI" / folder).mkdir()
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed here; run this with the tests' Python (scripts/bench.sh does)")
        source = Path(list(spec.submodule_search_locations)[0])
        shutil.copytree(source, site / name, ignore=_ignorer(source))
    size = folder_bytes(dest)
    if size > MAX_BYTES:
        raise SystemExit(f"{dest} is {size / 2**20:.0f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB that may travel")
    return {"dest": str(dest), "mib": size / 2**20}


def missing_modules(site: Path | None = None) -> list[str]:
    """Modules of EXPECTED + VENDORED that this Python cannot import (with `site` on the path)."""
    if site is not None and str(site) not in sys.path:
        sys.path.insert(0, str(site))
    return [name for name in EXPECTED + VENDORED if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dest", default=str(DEFAULT_DEST), help="where to write (default: .host in the checkout)")
    parser.add_argument("--check", action="store_true", help="only list modules missing here")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    if args.check:
        missing = missing_modules(dest / "site")
        print("missing: " + (", ".join(missing) if missing else "nothing"))
        return 1 if missing else 0
    host = Path(os.environ.get("COMFYUI_PATH", ""))
    done = prepare(host, dest)
    print(f"host source and {', '.join(VENDORED)} copied into {done['dest']} ({done['mib']:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
