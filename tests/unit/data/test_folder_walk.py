"""The one folder walk (`hypernet/data/folder_walk.py`): order, depth limit, hidden and symlinked
folders, and a folder that cannot be listed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hypernet.data.folder_walk import is_real_dir, walk_sorted


def make_tree(root: Path) -> None:
    for rel in ("b/z.png", "b/a.png", "a/deep/x.png", "a/1.png", ".hidden/secret.png", "top.png", ".dot.txt"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def walked(root: Path, max_depth: int | None) -> list[tuple[str, int, list[str]]]:
    return [(Path(folder).relative_to(root).as_posix(), depth, [e.name for e in entries])
            for folder, depth, entries in walk_sorted(str(root), max_depth)]


def test_depth_first_in_name_order_with_every_entry_listed(tmp_path):
    make_tree(tmp_path)
    assert walked(tmp_path, None) == [
        (".", 0, [".dot.txt", ".hidden", "a", "b", "top.png"]),
        ("a", 1, ["1.png", "deep"]),
        ("a/deep", 2, ["x.png"]),
        ("b", 1, ["a.png", "z.png"]),
    ]


@pytest.mark.parametrize("max_depth, folders", [(0, ["."]), (1, [".", "a", "b"]), (2, [".", "a", "a/deep", "b"])])
def test_max_depth_limits_the_levels_below_root(tmp_path, max_depth, folders):
    make_tree(tmp_path)
    assert [folder for folder, _, _ in walked(tmp_path, max_depth)] == folders


def test_symlinked_folders_are_listed_but_never_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "img.png").write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    outside.mkdir()
    (outside / "other.png").write_bytes(b"x")
    try:
        os.symlink(outside, tmp_path / "link", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks are not available here")
    result = walked(tmp_path, None)
    assert [folder for folder, _, _ in result] == [".", "real"]
    assert result[0][2] == ["link", "real"]
    entries = {e.name: e for e in next(iter(walk_sorted(str(tmp_path), 0)))[2]}
    assert is_real_dir(entries["real"]) and not is_real_dir(entries["link"])


def test_a_folder_that_cannot_be_listed_yields_its_error_and_the_walk_goes_on(tmp_path):
    missing = tmp_path / "gone"
    [(folder, depth, error)] = list(walk_sorted(str(missing), None))
    assert (folder, depth) == (str(missing), 0)
    assert isinstance(error, FileNotFoundError)


def test_a_file_entry_is_not_a_real_dir(tmp_path):
    make_tree(tmp_path)
    entries = {e.name: e for e in next(iter(walk_sorted(str(tmp_path), 0)))[2]}
    assert not is_real_dir(entries["top.png"]) and is_real_dir(entries["a"])
