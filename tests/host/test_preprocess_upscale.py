"""Preprocess's optional upscale_model in the real host: a tiny upscale model built in code, loaded by the
host's own Load Upscale Model node (chainner on the pinned host, spandrel on current ComfyUI), run tiled."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.images import pattern_rgb


def tiny_compact_upscaler_state(features: int = 4, scale: int = 2) -> dict:
    """Real-ESRGAN 'compact' (SRVGG) weights: conv, PReLU, conv, PReLU, conv -> pixel shuffle, plus the
    nearest-neighbour base image. Zero convolutions make the model output exactly the nearest 2x image."""
    state = {"body.0.weight": torch.zeros(features, 3, 3, 3), "body.0.bias": torch.zeros(features),
             "body.1.weight": torch.full((features,), 0.25),
             "body.2.weight": torch.zeros(features, features, 3, 3), "body.2.bias": torch.zeros(features),
             "body.3.weight": torch.full((features,), 0.25),
             "body.4.weight": torch.zeros(3 * scale * scale, features, 3, 3),
             "body.4.bias": torch.zeros(3 * scale * scale)}
    return state


@pytest.fixture()
def upscale_model(comfy_host, tmp_path, monkeypatch):
    folder = tmp_path / "upscale_models"
    folder.mkdir()
    # .pth keeps the key order the chainner loader reads shapes from (safetensors sorts the keys).
    torch.save(tiny_compact_upscaler_state(), folder / "tiny_2x.pth")
    monkeypatch.setitem(comfy_host.folder_paths.folder_names_and_paths, "upscale_models",
                        ([str(folder)], {".safetensors", ".pth"}))
    loader = comfy_host.nodes.NODE_CLASS_MAPPINGS["UpscaleModelLoader"]
    if hasattr(loader, "load_model"):  # the pinned 2024 host
        return loader().load_model("tiny_2x.pth")[0]
    output = loader.execute("tiny_2x.pth")  # current ComfyUI's node API
    return (output.result if hasattr(output, "result") else output)[0]


def nearest_2x(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST))


def test_tiled_upscale_matches_the_model(comfy_host, upscale_model):
    upscaling = importlib.import_module(f"{comfy_host.pack.__name__}.nodes.host.upscaling")
    source = pattern_rgb(40, 24, seed=3)
    tiled = upscaling.model_upscaler(upscale_model, tile=16, overlap=4)(source)  # several overlapping tiles
    assert tiled.size == (80, 48)
    assert np.abs(np.asarray(tiled, np.int16) - nearest_2x(source).astype(np.int16)).max() <= 1


def _dataset(comfy_host, folder, sizes):
    for i, (w, h) in enumerate(sizes):
        pattern_rgb(w, h, seed=i).save(folder / f"{i}.png")
    loader = importlib.import_module(f"{comfy_host.pack.__name__}.nodes.dataset").HypernetworkLoadDataset()
    return loader.load(directory=str(folder), recursive=False, caption_extension=".txt",
                       repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                       preview_count=0)["result"][0]


SETTINGS = dict(width=64, height=64, mode="crop", flip=False, existing_caption="copy", caption_text="",
                if_output_exists="refuse", workers=2, preview_count=0)


def test_preprocess_upscales_small_images_with_the_model_before_cropping(comfy_host, upscale_model, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    dataset = _dataset(comfy_host, source, [(32, 32), (96, 96)])
    node = importlib.import_module(f"{comfy_host.pack.__name__}.nodes.preprocess").HypernetworkPreprocess()
    result = node.run(dataset, output_directory=str(tmp_path / "out"), upscale_model=upscale_model, **SETTINGS)
    out, report = result["result"][0], result["result"][1]
    small = np.asarray(Image.open(out[0].path).convert("RGB"), np.int16)
    assert np.abs(small - nearest_2x(pattern_rgb(32, 32, seed=0)).astype(np.int16)).max() <= 1
    assert "Upscaled with upscale_model before crop/fit (smaller than the target): 1" in report
    assert Image.open(out[1].path).size == (64, 64)


def test_cancel_during_model_upscale_uses_the_hosts_interrupt(comfy_host, upscale_model, tmp_path):
    import comfy.model_management as mm

    source = tmp_path / "src"
    source.mkdir()
    dataset = _dataset(comfy_host, source, [(32, 32)])
    upscaling = importlib.import_module(f"{comfy_host.pack.__name__}.nodes.host.upscaling")
    try:
        mm.interrupt_current_processing(True)
        with pytest.raises(mm.InterruptProcessingException):
            upscaling.model_upscaler(upscale_model)(pattern_rgb(32, 32, seed=0))
    finally:
        mm.interrupt_current_processing(False)
