"""Shared plumbing for the benchmarks: child processes, timing, memory, the host in-process.

Every case runs in a fresh child process (`python bench/run.py --child CASE ARGS_JSON`) that
prints one `BENCH_RESULT <json>` line; so peak-memory readings (the RSS high-water mark, which
never goes down) belong to one case only, and a crash in one case does not end the run.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULT_PREFIX = "BENCH_RESULT "
PACK_NAME = "hn_pack"

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ child processes


def run_child(case: str, args: dict[str, Any], threads: int = 0, exact_rss: bool = False,
              timeout: float = 900.0) -> dict[str, Any]:
    """Run `case` in a fresh interpreter (same Python, same environment); return its result dict.

    threads > 0 caps the math libraries' thread pools (OpenMP/MKL, which torch uses) in the child.
    exact_rss: glibc serves every allocation above 64 KiB with its own mmap and unmaps it on free
    (a fixed threshold, which also turns off glibc's adaptive one), so RSS follows live memory.
    """
    cmd = [sys.executable, str(BENCH_DIR / "run.py"), "--child", case, json.dumps(args)]
    env = dict(os.environ)
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if exact_rss:
        env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT), env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result.setdefault("child_seconds", time.perf_counter() - started)
            return result
    raise RuntimeError(f"bench case {case} {args} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def emit_result(result: dict[str, Any]) -> None:
    """The child's one answer to the parent (stdout is the protocol channel)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ memory


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """High-water RSS of this process: VmHWM from /proc (can be reset, see `reset_peak_rss`),
    else ru_maxrss (since the process started; KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def trim_malloc() -> None:
    """Hand memory freed by the C allocator back to the OS (glibc), so RSS shows live memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the high-water RSS to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs).
    False where that is not possible; then the peak includes everything since the process started."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ timing


CLOCKS = ("cpu", "wall")


def interleaved(variants: dict[str, Callable[[], Any]], warmup: int, repeats: int,
                clock: str = "cpu") -> dict[str, list[float]]:
    """Seconds per call for each variant on `clock`, measured in turns (A B A B ...) so that load
    from other processes on a shared machine hits every variant alike; the order alternates
    each round. clock "cpu" is this process's CPU time (all its threads), "wall" the elapsed time.
    The other clock's samples are kept under the key "<name>@wall" / "<name>@cpu"."""
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r} is invalid; use one of {CLOCKS}")
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    other = "wall" if clock == "cpu" else "cpu"
    times: dict[str, list[float]] = {}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else list(reversed(names))
        for name in order:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            variants[name]()
            spent = {"cpu": time.process_time() - cpu0, "wall": time.perf_counter() - wall0}
            times.setdefault(name, []).append(spent[clock])
            times.setdefault(f"{name}@{other}", []).append(spent[other])
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval for the median of `values` (order statistics):
    (low, high, coverage). [x(k), x(n+1-k)] covers the true median with probability
    1 - 2 * P(Binomial(n, 1/2) < k); the narrowest such interval with coverage >= `confidence`, or
    the whole range (and its lower coverage) when there are too few values for that."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median_interval needs at least one value")

    def coverage(k: int) -> float:
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / 2 ** n

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


def paired_ratios(ours: list[float], baseline: list[float]) -> list[float]:
    """ours[i] / baseline[i] per round of `interleaved` (both measured in the same turn, so load from
    other processes hits the pair alike): the spread of these says how sure one run's ratio is."""
    return [o / b for o, b in zip(ours, baseline) if b > 0]


# ------------------------------------------------------------------ imports


def import_pure_core() -> types.ModuleType:
    """The pack's pure core as the top-level package `hypernet` (no ComfyUI needed)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import hypernet

    return hypernet


def host_path() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env)
    spec = importlib.util.spec_from_file_location("hn_hostenv", REPO_ROOT / "scripts" / "hostenv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    host, _ = module.resolve_host(provision=False)
    return host


def import_host(cpu: bool = True) -> types.SimpleNamespace:
    """The ComfyUI host imported in this process (flags as the test server uses), the pack loaded
    as a custom-node package, and the tiny-model helpers from the test nodes.

    Returns a namespace with `pack`, `nodes` (the host's nodes module), `tiny`, `torch`.
    """
    host = host_path()
    if "comfy.model_management" not in sys.modules:
        sys.path.insert(0, str(host))
        import comfy.options

        comfy.options.enable_args_parsing()
        saved_argv = sys.argv
        sys.argv = [saved_argv[0], "--use-pytorch-cross-attention"] + (["--cpu"] if cpu else [])
        try:
            import comfy.cli_args  # noqa: F401  (parses the flags above once)
            import comfy.model_management  # noqa: F401
        finally:
            sys.argv = saved_argv
    import nodes as host_nodes
    import torch

    if PACK_NAME in sys.modules:
        pack = sys.modules[PACK_NAME]
    else:
        spec = importlib.util.spec_from_file_location(PACK_NAME, REPO_ROOT / "__init__.py",
                                                      submodule_search_locations=[str(REPO_ROOT)])
        pack = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = pack
        spec.loader.exec_module(pack)
    for name in ("network.patch", "network.module", "network.hypernetwork_config", "train.trainer"):
        importlib.import_module(f"{PACK_NAME}.hypernet.{name}")
    for name in ("patches", "sampling", "training"):
        importlib.import_module(f"{PACK_NAME}.nodes.host.{name}")
    tiny_spec = importlib.util.spec_from_file_location(
        "hn_bench_tiny_models", REPO_ROOT / "tests" / "support" / "hn_test_nodes" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(tiny_spec)
    tiny_spec.loader.exec_module(tiny)
    return types.SimpleNamespace(pack=pack, nodes=host_nodes, tiny=tiny, torch=torch, path=host)


def load_support_module(name: str) -> types.ModuleType:
    """A file from tests/support/ by path (they import `hypernet` top-level: put the repo on sys.path)."""
    import_pure_core()
    spec = importlib.util.spec_from_file_location(f"hn_bench_{name}", REPO_ROOT / "tests" / "support" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
