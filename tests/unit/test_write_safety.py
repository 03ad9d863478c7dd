"""Write safety in the pure core: the atomic writer's temp names, modes and no-replace writes, stale
temp cleanup, writable-folder checks, run folders that move earlier runs aside, the final-file
rule, resume without `.optim`, network health, and caption links and shared caption files."""
from __future__ import annotations

import os
import time

import pytest
import torch

from hypernet.util.atomic import (TargetExistsError, atomic_write_bytes, default_file_mode, is_temp_name,
                             remove_stale_temp_files, require_writable_folder)
from hypernet.network.config import HypernetworkConfig
from hypernet.network.fileio import optim_path, save_hypernetwork, save_optimizer_state
from hypernet.network.health import network_warnings
from hypernet.network.module import Hypernetwork
from hypernet.tagger.captions import CaptionClaims, write_caption
from hypernet.train.checkpoints import RunFolder
from hypernet.train.final_file import FinalFileGuard, final_file_note
from hypernet.train.trainer import copy_network, resume_point


def net(name: str = "net", seed: int = 0, step: int = 0) -> Hypernetwork:
    network = Hypernetwork.create(HypernetworkConfig(name=name, sizes=[8], activation_func="relu", seed=seed))
    network.step = step
    return network


def test_written_files_get_the_umask_mode_and_a_recognisable_temp_name(tmp_path):
    seen = []
    original = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return original(src, dst)

    os.replace = spy
    try:
        path = atomic_write_bytes(tmp_path / "a.pt", b"data")
    finally:
        os.replace = original
    assert path.stat().st_mode & 0o777 == default_file_mode() != 0o600
    assert seen and is_temp_name(seen[0]) and seen[0].startswith(".a.pt.hntmp-")
    assert not is_temp_name("a.pt") and not is_temp_name(".notes.tmp") and not is_temp_name("x.abcdefgh.tmp")


def test_no_replace_writes_leave_an_existing_file_alone(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"user")
    with pytest.raises(TargetExistsError):
        atomic_write_bytes(target, b"ours", replace=False)
    assert target.read_bytes() == b"user" and os.listdir(tmp_path) == ["x.png"]
    atomic_write_bytes(tmp_path / "new.png", b"ours", replace=False)
    assert (tmp_path / "new.png").read_bytes() == b"ours"


def test_only_stale_temp_files_of_this_pack_are_removed(tmp_path):
    old = time.time() - 600
    ours_old = [tmp_path / ".a.pt.hntmp-abcdefgh.tmp", tmp_path / ".a.pt.abcdefgh.tmp"]
    ours_new = tmp_path / ".b.pt.hntmp-abcdefgh.tmp"
    others = [tmp_path / ".a.tmp", tmp_path / "a.pt", tmp_path / ".a.pt.hntmp-ABCDEFGH.tmp"]
    for path in ours_old + [ours_new] + others:
        path.write_bytes(b"x")
    for path in ours_old + others:
        os.utime(path, (old, old))
    removed = remove_stale_temp_files([tmp_path], older_than=time.time() - 60)
    assert sorted(removed) == sorted(ours_old)
    assert ours_new.exists() and all(p.exists() for p in others)


def test_unwritable_or_blocked_folders_are_named_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="output_directory.*file"):
        require_writable_folder(blocker / "sub", "output_directory")
    with pytest.raises(ValueError, match="output_directory"):
        require_writable_folder(blocker, "output_directory")
    assert require_writable_folder(tmp_path / "a" / "b", "f").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_a_read_only_folder_is_a_named_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ValueError, match=f"output_directory: cannot write into {folder}"):
            require_writable_folder(folder, "output_directory")
    finally:
        folder.chmod(0o755)


def test_run_folder_moves_only_its_own_files_aside(tmp_path):
    folder = RunFolder(tmp_path, "run")
    folder.root.mkdir()
    for name in ("run-2.pt", "run-2.pt.optim", "run-4.png", "hypernetwork_loss.csv", "training_settings.json"):
        (folder.root / name).write_text(name)
    (folder.root / "my_notes.txt").write_text("mine")
    assert [p.name for p in folder.files_after(2)] == ["run-4.png"]
    moved = folder.move_aside()
    assert moved == folder.root / "previous-1"
    assert sorted(p.name for p in moved.iterdir()) == ["hypernetwork_loss.csv", "run-2.pt", "run-2.pt.optim",
                                                       "run-4.png", "training_settings.json"]
    assert sorted(p.name for p in folder.root.iterdir()) == ["my_notes.txt", "previous-1"]
    (folder.root / "run-6.pt").write_text("x")
    assert folder.move_aside() == folder.root / "previous-2" and folder.move_aside() is None


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "..", "", "x" * 5000, "a\x00b"])
def test_run_folder_refuses_names_that_are_paths(tmp_path, name):
    with pytest.raises(ValueError, match="hypernetwork name"):
        RunFolder(tmp_path, name)


def test_resume_uses_the_newest_weights_when_the_optim_is_gone(tmp_path):
    folder = RunFolder(tmp_path, "run")
    for step in (2, 4):
        path = save_hypernetwork(net("run", seed=step, step=step), folder.checkpoint_path(step))
        save_optimizer_state(path, "AdamW", {"state": {}, "param_groups": []})
    optim_path(folder.checkpoint_path(4)).unlink()
    network, optim_state, _, message = resume_point(net("run"), folder, resume=True, max_step=10, source_file=None)
    assert network.step == 4 and optim_state is None
    assert "resumed from run-4.pt (step 4) with a fresh optimizer" in message


def test_final_file_rule(tmp_path):
    folder = RunFolder(tmp_path, "net")
    final = tmp_path / "net.pt"
    start = copy_network(net("net", seed=1))
    assert final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start) == ""
    save_hypernetwork(net("other", seed=2), final)
    with pytest.raises(FileExistsError, match="overwrite"):
        final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start)
    assert "overwrite is on" in final_file_note(final, folder, overwrite=True, source_file=None, starting_network=start)
    assert "continues" in final_file_note(final, folder, overwrite=False, source_file=final, starting_network=start)
    save_hypernetwork(start, final)  # e.g. Create Hypernetwork saved the very network being trained
    assert "started from" in final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start)
    save_hypernetwork(net("trained", seed=3), final)
    folder.root.mkdir()
    save_hypernetwork(net("trained", seed=3), folder.checkpoint_path(0))  # a run of an earlier version
    assert "earlier run" in final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start)
    folder.checkpoint_path(0).unlink()
    with pytest.raises(FileExistsError):
        final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start)
    folder.record_final(final)
    assert "earlier run" in final_file_note(final, folder, overwrite=False, source_file=None, starting_network=start)
    guard = FinalFileGuard(final)
    guard(final)
    final.write_bytes(b"replaced by someone else meanwhile")
    with pytest.raises(FileExistsError, match="changed"):
        guard(final)


def test_network_warnings_catch_huge_and_non_finite_weights():
    assert network_warnings(net()) == []
    huge = net()
    with torch.no_grad():
        for param in huge.parameters():
            param.fill_(1e38)
    assert "overflows" in network_warnings(huge)[0]
    broken = net()
    with torch.no_grad():
        next(iter(broken.parameters()))[0] = float("nan")
    assert "NaN or infinite" in network_warnings(broken)[0]


def test_caption_links_leading_out_are_never_read_or_replaced(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (folder / "a.txt").symlink_to(secret)
    for mode in ("existing_first", "new_first", "overwrite"):
        with pytest.raises(ValueError, match="outside the image's folder"):
            write_caption(folder / "a.png", ["tag"], mode)
    assert write_caption(folder / "a.png", ["tag"], "only_missing")[1] == "kept_existing"
    assert (folder / "a.txt").is_symlink() and secret.read_text() == "secret"


def test_caption_claims_report_images_that_share_a_caption(tmp_path):
    claims = CaptionClaims(".txt")
    assert claims.claim(tmp_path / "a.jpg") is None
    assert claims.claim(tmp_path / "a.jpg") is None
    assert "shares a.txt with a.jpg" in claims.claim(tmp_path / "a.png")
    assert claims.claim(tmp_path / "sub" / "a.png") is None


def test_containment_check_does_not_accept_a_sibling_with_the_same_prefix(tmp_path):
    from hypernet.util.paths import is_within

    root = str(tmp_path / "data")
    assert is_within(root + "/a/b.png", root)
    assert is_within(root, root) and not is_within(root, root, include_root=False)
    assert not is_within(root + "set/b.png", root)  # '/data' must not contain '/dataset'
    assert not is_within(str(tmp_path), root)
