"""A1111's base-model identity (sd_checkpoint / sd_checkpoint_name) and the hash cache."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from hypernet.network import checkpoint_hash
from hypernet.network.checkpoint_hash import HashCache, a1111_model_name, base_model_of


def test_short_hash_is_the_first_ten_hex_of_sha256_and_name_is_a1111s(tmp_path):
    model = tmp_path / "v1-5-pruned.safetensors"
    model.write_bytes(os.urandom(3 * 2**20 + 17))  # spans several read chunks
    base = base_model_of(model, "sd15/v1-5-pruned.safetensors", HashCache(tmp_path / "cache.json"))
    assert base.shorthash == hashlib.sha256(model.read_bytes()).hexdigest()[:10]
    assert base.name == "sd15_v1-5-pruned"
    assert base.known and "sd15_v1-5-pruned [" in base.report_line()


@pytest.mark.parametrize("relative, expected", [("model.ckpt", "model"), ("a/b.c.safetensors", "a_b.c"),
                                                ("a\\b.safetensors", "a_b")])
def test_a1111_model_name(relative, expected):
    assert a1111_model_name(relative) == expected


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    model = tmp_path / "base.ckpt"
    model.write_bytes(b"weights-1")
    calls = []
    real = checkpoint_hash.sha256_file
    monkeypatch.setattr(checkpoint_hash, "sha256_file", lambda path, stop=None: calls.append(path) or real(path))
    cache_file = tmp_path / "cache" / "hashes.json"
    first = HashCache(cache_file).sha256(model)
    assert HashCache(cache_file).sha256(model) == first  # a new cache object reads the JSON file
    assert len(calls) == 1
    saved = json.loads(cache_file.read_text())["files"][str(model.resolve())]
    assert saved["size"] == len(b"weights-1") and saved["sha256"] == first
    model.write_bytes(b"weights-22")  # size (and mtime) changed: hashed again
    second = HashCache(cache_file).sha256(model)
    assert len(calls) == 2 and second == hashlib.sha256(b"weights-22").hexdigest()
    assert not [p for p in cache_file.parent.iterdir() if p.name != cache_file.name]  # no temp files left


def test_a_broken_cache_file_is_rebuilt(tmp_path):
    model = tmp_path / "base.ckpt"
    model.write_bytes(b"abc")
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text("{not json")
    assert HashCache(cache_file).sha256(model) == hashlib.sha256(b"abc").hexdigest()
    assert json.loads(cache_file.read_text())["version"] == checkpoint_hash.CACHE_VERSION


def test_unreadable_file_is_unknown_with_the_reason(tmp_path):
    base = base_model_of(tmp_path / "missing.ckpt", "missing.ckpt", HashCache(tmp_path / "c.json"))
    assert not base.known and base.name is None
    assert "missing.ckpt" in base.why and "stay empty" in base.report_line()


def test_hashing_can_be_cancelled(tmp_path):
    model = tmp_path / "big.ckpt"
    model.write_bytes(b"x" * (2**20 + 1))
    with pytest.raises(InterruptedError):
        checkpoint_hash.sha256_file(model, should_stop=lambda: True)


@pytest.mark.parametrize("planted", ["../../etc/passwd", "not-a-hash", "A" * 64, "0" * 63, 12345, ["0" * 64],
                                     "0" * 64 + "\n"])
def test_a_tampered_cache_entry_is_not_trusted(tmp_path, planted):
    """The cache is a user-editable file: only a sha256 hex digest is handed out as sd_checkpoint."""
    model = tmp_path / "base.safetensors"
    model.write_bytes(b"weights")
    cache_file = tmp_path / "hashes.json"
    stat = model.stat()
    cache_file.write_text(json.dumps({"version": checkpoint_hash.CACHE_VERSION, "files": {
        str(model.resolve()): {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": planted}}}))
    base = base_model_of(model, "base.safetensors", HashCache(cache_file))
    assert base.shorthash == hashlib.sha256(b"weights").hexdigest()[:10]
    assert json.loads(cache_file.read_text())["files"][str(model.resolve())]["sha256"] == \
        hashlib.sha256(b"weights").hexdigest()
