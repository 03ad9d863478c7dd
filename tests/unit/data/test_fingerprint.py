"""folder_fingerprint: what LoadDataset's IS_CHANGED compares between runs (no host needed)."""
from __future__ import annotations

import os

from hypernet.data.fingerprint import folder_fingerprint
from hypernet.data.sidecar import SIDECAR_NAME


def _folder(tmp_path):
    (tmp_path / "a.png").write_bytes(b"png-a")
    (tmp_path / "a.txt").write_text("red, ball")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(b"png-b")
    return tmp_path


def test_same_folder_same_fingerprint(tmp_path):
    root = _folder(tmp_path)
    assert folder_fingerprint(root, None, ".txt") == folder_fingerprint(root, None, ".txt")


def test_rewriting_a_caption_with_the_same_text_keeps_it_but_new_text_changes_it(tmp_path):
    root = _folder(tmp_path)
    before = folder_fingerprint(root, None, ".txt")
    os.utime(root / "a.txt", ns=(1, 1))
    assert folder_fingerprint(root, None, ".txt") == before
    (root / "a.txt").write_text("blue, ball")
    assert folder_fingerprint(root, None, ".txt") != before


def test_an_image_changed_or_added_changes_it(tmp_path):
    root = _folder(tmp_path)
    before = folder_fingerprint(root, None, ".txt")
    (root / "a.png").write_bytes(b"png-a, longer now")
    changed = folder_fingerprint(root, None, ".txt")
    assert changed != before
    (root / "c.png").write_bytes(b"png-c")
    assert folder_fingerprint(root, None, ".txt") != changed


def test_hidden_files_are_ignored_but_the_editor_sidecar_counts(tmp_path):
    root = _folder(tmp_path)
    before = folder_fingerprint(root, None, ".txt")
    (root / ".DS_Store").write_bytes(b"x")
    assert folder_fingerprint(root, None, ".txt") == before
    (root / SIDECAR_NAME).write_text('{"excluded": ["a.png"]}')
    assert folder_fingerprint(root, None, ".txt") != before


def test_depth_limits_what_is_read(tmp_path):
    root = _folder(tmp_path)
    top_only = folder_fingerprint(root, 0, ".txt")
    (root / "sub" / "b.png").write_bytes(b"png-b changed")
    assert folder_fingerprint(root, 0, ".txt") == top_only
    assert folder_fingerprint(root, None, ".txt") != folder_fingerprint(root, 0, ".txt")
