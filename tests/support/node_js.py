"""Run a function exported by one of the pack's browser modules under node, to compare the
browser's copy of a rule with the Python one on shared cases (tests/cases/*.json)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
_IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
# without node these tests skip, except under CI (CI=true), where a run must never pass without them
needs_node = pytest.mark.skipif(NODE is None and not _IN_CI, reason="node is not installed (apt-get install nodejs)")

_RUNNER = """
import { readFileSync } from "node:fs";
const [module, name] = process.argv.slice(2);
const fn = (await import(module))[name];
const calls = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(calls.map((args) => fn(...args))));
"""


def load_cases(name: str) -> list:
    """The `cases` list of tests/cases/<name>.json."""
    return json.loads((REPO_ROOT / "tests" / "cases" / f"{name}.json").read_text(encoding="utf-8"))["cases"]


def _module_copy(module: str, tmp_path: Path) -> Path:
    """A copy of the import-free ES module web/<module> as .mjs (an ES module to node without a
    package.json)."""
    source = REPO_ROOT / "web" / module
    copy = tmp_path / (source.stem + ".mjs")
    copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def _node(script: Path, *args: str, stdin: str = "") -> Any:
    if NODE is None:  # only reached under CI (otherwise the tests skip)
        pytest.fail("CI=true and node is not installed: `apt-get install -y nodejs`")
    done = subprocess.run([NODE, str(script), *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"node failed: {done.stderr}"
    return json.loads(done.stdout)


def call_js(module: str, function: str, calls: Sequence[Sequence[Any]], tmp_path: Path) -> list:
    """`function(*args)` for each args of `calls`, from the import-free ES module web/<module>."""
    runner = tmp_path / "run_export.mjs"
    runner.write_text(_RUNNER, encoding="utf-8")
    return _node(runner, _module_copy(module, tmp_path).as_uri(), function, stdin=json.dumps(calls))


def run_js(module: str, body: str, tmp_path: Path) -> Any:
    """Run `body` (JS statements that `return` a JSON value) with `mod` bound to web/<module>'s exports."""
    script = tmp_path / "run_body.mjs"
    script.write_text(f"const mod = await import({json.dumps(_module_copy(module, tmp_path).as_uri())});\n"
                      f"const result = await (async () => {{ {body} }})();\n"
                      "process.stdout.write(JSON.stringify(result));\n", encoding="utf-8")
    return _node(script)
