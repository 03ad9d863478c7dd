"""The final-file guard and the user's `.optim` (issue 22, point 4), without a server."""
from __future__ import annotations

import pytest

from hypernet.network.config import HypernetworkConfig
from hypernet.network.fileio import optim_path
from hypernet.network.module import Hypernetwork
from hypernet.train.checkpoints import RunFolder
from hypernet.train.final_file import FinalFileGuard, final_file_note


def _network() -> Hypernetwork:
    return Hypernetwork.create(HypernetworkConfig(name="keep3", sizes=[32], activation_func="relu", seed=0))


def test_a_lone_optim_is_the_users(tmp_path):
    final = tmp_path / "keep3.pt"
    optim_path(final).write_bytes(b"user state")
    with pytest.raises(FileExistsError, match="keep3.pt.optim already exists"):
        final_file_note(final, RunFolder(tmp_path, "keep3"), overwrite=False, source_file=None,
                        starting_network=_network())
    note = final_file_note(final, RunFolder(tmp_path, "keep3"), overwrite=True, source_file=None,
                           starting_network=_network())
    assert "keep3.pt.optim" in note and "overwrite is on" in note
    assert optim_path(final).read_bytes() == b"user state"


def test_the_guard_notices_an_optim_appearing_while_training(tmp_path):
    final = tmp_path / "keep3.pt"
    guard = FinalFileGuard(final)
    guard(final)  # nothing changed: allowed
    optim_path(final).write_bytes(b"written by someone else meanwhile")
    with pytest.raises(FileExistsError, match="changed by something else"):
        guard(final)
