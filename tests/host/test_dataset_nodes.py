"""Dataset-side nodes in the real host, in-process: the folder fingerprint behind Load Dataset's
IS_CHANGED, the tagger's '(download)' entries (from a local HTTP mirror via HF_ENDPOINT) and the
missing-onnxruntime error."""
from __future__ import annotations

import functools
import http.server
import importlib
import sys
import threading

import pytest

from tests.support import fake_tagger
from tests.support.images import pattern_rgb

TAGGER_KEY = "wd14_tagger"
KNOWN = "wd-v1-4-vit-tagger"


@pytest.fixture()
def pack_module(comfy_host):
    return lambda name: importlib.import_module(f"{comfy_host.pack.__name__}.{name}")


@pytest.fixture()
def tagger_folder(comfy_host, tmp_path, monkeypatch):
    """A fresh, first-in-line wd14_tagger folder for this test (restored afterwards)."""
    folder = tmp_path / "taggers"
    folder.mkdir()
    monkeypatch.setitem(comfy_host.folder_paths.folder_names_and_paths, TAGGER_KEY,
                        ([str(folder)], {".onnx", ".csv"}))
    return folder


def tag_inputs(**overrides) -> dict:
    values = dict(general_threshold=0.35, character_threshold=0.85, exclude_tags="", replace_underscores=True,
                  escape_brackets=True, sort="confidence", characters_first=True, include_rating=False,
                  max_tags=0, write_captions="off", batch_size=2, unload_after=False)
    values.update(overrides)
    return values


def image_batch(probs: dict):
    import numpy as np
    import torch

    pixels = np.asarray(fake_tagger.image_for(probs), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels)[None]


# ------------------------------------------------------------------ IS_CHANGED fingerprint (the digest itself: tests/unit/test_data_fingerprint.py)


def test_is_changed_uses_the_scan_depth_of_the_inputs(pack_module, tmp_path):
    node = pack_module("nodes.dataset").HypernetworkLoadDataset
    pattern_rgb(16, 16).save(tmp_path / "a.png")
    (tmp_path / "5_sub").mkdir()
    flat, kohya, deep = (node.IS_CHANGED(directory=str(tmp_path), recursive=r, caption_extension=".txt",
                                         repeats_from_folder_names=k) for r, k in ((False, False), (False, True),
                                                                                    (True, False)))
    pattern_rgb(16, 16).save(tmp_path / "5_sub" / "b.png")
    after = [node.IS_CHANGED(directory=str(tmp_path), recursive=r, caption_extension=".txt",
                             repeats_from_folder_names=k) for r, k in ((False, False), (False, True), (True, False))]
    assert after[0] == flat and after[1] != kohya and after[2] != deep
    missing = node.IS_CHANGED(directory=str(tmp_path / "gone"), recursive=False, caption_extension=".txt",
                              repeats_from_folder_names=False)
    assert "gone" in missing


# ------------------------------------------------------------------ tagger: download, missing onnxruntime


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    """A local stand-in for huggingface.co serving the fake tagger as a known tagger's repo."""
    root = tmp_path / "mirror"
    repo = root / "SmilingWolf" / KNOWN / "resolve" / "main"
    repo.mkdir(parents=True)
    model, tags = fake_tagger.build_fake_tagger(tmp_path / "built", name="m")
    (repo / "model.onnx").write_bytes(model.read_bytes())
    (repo / "selected_tags.csv").write_bytes(tags.read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


def test_download_entry_fetches_into_the_first_tagger_folder_then_tags(pack_module, tagger_folder, mirror):
    tagger = pack_module("nodes.tagger")
    choice = tagger.DOWNLOAD_PREFIX + KNOWN
    assert choice in tagger.model_choices() and KNOWN not in tagger.model_choices()
    out = tagger.HypernetworkWD14Tag().tag(model=choice, image=image_batch({"1girl": 0.95, "smile": 0.8}),
                                           **tag_inputs(unload_after=True))
    dataset, strings = out["result"]
    assert strings == ["1girl, smile"]
    assert len(dataset) == 0
    assert sorted(p.name for p in tagger_folder.iterdir()) == [f"{KNOWN}.csv", f"{KNOWN}.onnx"]
    assert KNOWN in tagger.model_choices(), "the downloaded tagger is listed as installed"
    assert pack_module("hypernet.tagger.model").unload(KNOWN) is False, "unload_after frees the session"


def test_missing_onnxruntime_names_the_install_command_before_downloading(pack_module, tagger_folder,
                                                                           monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing may be fetched
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    tagger = pack_module("nodes.tagger")
    errors = pack_module("hypernet.tagger.errors")
    with pytest.raises(errors.TaggerDependencyError) as caught:
        tagger.HypernetworkWD14Tag().tag(model=tagger.DOWNLOAD_PREFIX + KNOWN, image=image_batch({}),
                                         **tag_inputs())
    assert "pip install onnxruntime" in str(caught.value)
    assert list(tagger_folder.iterdir()) == []


def test_nothing_connected_is_a_clear_error(pack_module, tagger_folder):
    tagger = pack_module("nodes.tagger")
    with pytest.raises(ValueError, match="connect a dataset"):
        tagger.HypernetworkWD14Tag().tag(model=tagger.DOWNLOAD_PREFIX + KNOWN, **tag_inputs())


# ------------------------------------------------------------------ cancel


def test_cancel_stops_load_and_preprocess_with_the_hosts_interrupt(pack_module, tmp_path, comfy_host):
    import comfy.model_management as mm

    for seed in range(3):
        pattern_rgb(24, 16, seed=seed).save(tmp_path / f"{seed}.png")
    load = dict(directory=str(tmp_path), recursive=False, caption_extension=".txt", repeats_from_folder_names=False,
                on_bad_file="skip and report", missing_caption="empty", preview_count=0)
    loader = pack_module("nodes.dataset").HypernetworkLoadDataset()
    dataset = loader.load(**load)["result"][0]
    out = tmp_path / "out"
    preprocess = pack_module("nodes.preprocess").HypernetworkPreprocess()
    settings = dict(width=64, height=64, mode="crop", flip=False, existing_caption="copy", caption_text="",
                    output_directory=str(out), if_output_exists="refuse", workers=1, preview_count=0)
    try:
        for run in (lambda: loader.load(**load), lambda: preprocess.run(dataset, **settings)):
            mm.interrupt_current_processing(True)  # raising the interrupt clears the flag again
            with pytest.raises(mm.InterruptProcessingException):
                run()
    finally:
        mm.interrupt_current_processing(False)
    assert [p.name for p in out.iterdir()] == [".hn_preprocess.json"], "no image written after Cancel"
    assert len(preprocess.run(dataset, **dict(settings, output_directory=""))["result"][0]) == 3
