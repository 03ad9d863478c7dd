"""scripts/demo.py, run as the README's first command runs it: the previews it reports exist, and
its temp folder is removed unless --keep (a --workdir the user gave is never removed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.pack_files import REPO_ROOT, load_by_path


def load_demo():
    return load_by_path("hn_demo", "scripts/demo.py")


def test_demo_makes_the_previews_it_claims_and_removes_its_temp_folder(host_path):
    env = dict(os.environ, COMFYUI_PATH=str(host_path))
    run = subprocess.run([sys.executable, "scripts/demo.py", "--steps", "4"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-4000:]
    previews = re.findall(r"preview at step (\d+): (\S+)", out)
    assert [int(step) for step, _ in previews] == [2, 4], out[-4000:]
    assert re.search(r"previews: +2 in ", out)
    workdir = Path(re.search(r"files under (\S+)", out).group(1).rstrip(";"))
    assert "removed at the end unless --keep" in out
    assert f"removed the temp folder {workdir}" in out and not workdir.exists()


def test_demo_keeps_its_folder_when_asked_or_failed_and_never_removes_a_given_workdir(tmp_path):
    demo = load_demo()
    folders = {name: tmp_path / name for name in ("default", "keep", "failed", "given")}
    for folder in folders.values():
        (folder / "models").mkdir(parents=True)
    assert demo.finish_workdir(folders["default"], temporary=True, keep=False) is True
    assert demo.finish_workdir(folders["keep"], temporary=True, keep=True) is False
    assert demo.finish_workdir(folders["failed"], temporary=True, keep=False, failed=True) is False
    assert demo.finish_workdir(folders["given"], temporary=False, keep=False) is False
    assert [name for name, folder in folders.items() if folder.exists()] == ["keep", "failed", "given"]
