"""Preprocess keep_alpha through the real host: Preprocess -> written folder -> LoadDataset trains
with the same alpha weight maps (and the same pixels, so the same loss) as the lazy dataset."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tests.host.test_training import create, pack, train  # noqa: F401  (fixtures)


def _rgba_folder(folder):
    """Four 96x80 RGBA images: noise whose alpha is an asymmetric pattern (a ramp and a hole)."""
    folder.mkdir()
    rng = np.random.default_rng(5)
    for index in range(4):
        alpha = np.tile(np.linspace(0, 255, 96), (80, 1)).astype(np.uint8)
        alpha[10 + 5 * index: 40, 8:30] = 0
        alpha[:, 80:] = 255
        pixels = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
        Image.fromarray(np.dstack([pixels, alpha]), "RGBA").save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"shape {index}")


def test_written_rgba_outputs_train_like_the_lazy_dataset(comfy_host, pack, tmp_path):  # noqa: F811
    _rgba_folder(tmp_path / "src")
    load = dict(recursive=False, caption_extension=".txt", repeats_from_folder_names=False,
                on_bad_file="skip and report", missing_caption="empty", preview_count=0)
    loader = pack.nodes.dataset.HypernetworkLoadDataset()
    source = loader.load(directory=str(tmp_path / "src"), **load)["result"][0]
    settings = dict(width=64, height=64, mode="crop", flip=True, existing_caption="copy", caption_text="",
                    if_output_exists="refuse", workers=1, preview_count=0, keep_alpha=True)
    node = pack.nodes.preprocess.HypernetworkPreprocess()
    lazy = node.run(source, output_directory="", **settings)["result"][0]
    node.run(source, output_directory=str(tmp_path / "out"), **settings)
    written = loader.load(directory=str(tmp_path / "out"), **load)["result"][0]
    assert len(lazy) == len(written) == 8 and all(not item.transforms for item in written)

    session, alpha_weight = pack.nodes.training_session, pack.hypernet.train.alpha_weight
    maps = [alpha_weight.dataset_weight_maps(ds.items, [(8, 8)] * 8, session._multiple_of_8) for ds in (lazy, written)]
    assert all(not bool((m == 1).all()) for m in maps[0])  # each image is really weighted
    assert all(torch.equal(a, b) for a, b in zip(*maps))
    load_image = pack.hypernet.data.dataset.load_item_image
    for a, b in zip(lazy, written):  # the colours under transparency, as alpha_loss_weight encodes them
        assert np.array_equal(np.asarray(load_image(a, composite_alpha=False)),
                              np.asarray(load_image(b, composite_alpha=False)))

    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    runs = [train(pack, model, clip, vae, ds, create(pack, "alpha_written", [32, 64]), steps=2, batch_size=4,
                  alpha_loss_weight=True, latent_disk_cache=False) for ds in (lazy, written)]
    assert "alpha loss weight: 8 of 8 image(s) weighted" in runs[1]["ui"]["text"][0]
    assert runs[0]["result"][2].losses == runs[1]["result"][2].losses
