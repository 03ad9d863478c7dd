"""The tagger preprocesses the next batch on a helper thread while the session runs the current one:
same results in the same order as strictly one after the other, and errors still propagate."""
from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest
from PIL import Image

import hypernet.tagger.pipeline as tagger_core
from hypernet.tagger.pipeline import tag_image_files, tag_images
from hypernet.tagger.preprocess import area_resize
from tests.support.fake_tagger import image_for, loaded_fake_tagger

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="needs onnxruntime and onnx",
)

SCENES = [{"1girl": 0.9, "smile": 0.8}, {"long_hair": 0.7}, {"hatsune_miku": 0.95}, {"smile": 0.9},
          {"c.c.": 0.7, "sensitive": 0.8}, {}, {"1girl": 0.6, "long_hair": 0.9}]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    yield from loaded_fake_tagger(tmp_path_factory.mktemp("models"))


class Recording:
    """Stands in for a TaggerModel: runs the real one and records the order of events."""

    def __init__(self, model, on_predict=None):
        self.model, self.on_predict, self.events = model, on_predict, []
        self.input_size, self.table = model.input_size, model.table

    def predict(self, batch):
        self.events.append(("predict", batch.shape[0]))
        if self.on_predict:
            self.on_predict(len([e for e in self.events if e[0] == "predict"]))
        return self.model.predict(batch)


def _sequential(model, images, batch_size):
    """Reference: every batch preprocessed, then predicted, strictly in turn (no helper thread)."""
    out = []
    for start in range(0, len(images), batch_size):
        results, rows, slots = tagger_core._prepare_batch(model, images[start:start + batch_size], start)
        if rows:
            probs = model.predict(np.stack(rows))
            for slot, p in zip(slots, probs):
                results[slot] = tagger_core.select_tags(p, model.table, tagger_core.TagOptions(), results[slot].source)
        out.extend(results)
    return out


@pytest.mark.parametrize("batch_size", [1, 2, 3, 10])
def test_prefetched_results_equal_sequential_ones_in_order(model, tmp_path, batch_size):
    paths = []
    for index, scene in enumerate(SCENES):
        paths.append(tmp_path / f"{index}.png")
        image_for(scene).save(paths[-1])
    paths.insert(3, tmp_path / "broken.png")
    paths[3].write_bytes(b"not an image")
    got = tag_image_files(model, paths, batch_size=batch_size)
    want = _sequential(model, paths, batch_size)
    assert [r.source for r in got] == [str(p) for p in paths]
    assert [(r.tags, r.error is None) for r in got] == [(r.tags, r.error is None) for r in want]
    assert [r.confidences for r in got] == [r.confidences for r in want]
    assert got[3].error and not got[3].tags
    assert sum(bool(r.tags) for r in got) >= 5  # the scenes do trigger tags


def test_next_batch_is_preprocessed_while_the_session_runs(model, monkeypatch):
    """predict of batch 1 waits until the preprocessing of batch 2 has started: only possible when
    it runs concurrently (without the helper thread the wait times out and the flag stays False)."""
    second_batch_started = threading.Event()
    original = tagger_core._prepare_batch

    def prepare(m, items, start):
        if start > 0:
            second_batch_started.set()
        return original(m, items, start)

    monkeypatch.setattr(tagger_core, "_prepare_batch", prepare)
    overlapped = []
    recording = Recording(model, on_predict=lambda n: overlapped.append(second_batch_started.wait(5.0)) if n == 1 else None)
    images = [image_for(scene) for scene in SCENES[:4]]
    results = tag_images(recording, images, batch_size=2)
    assert overlapped == [True]
    assert [r.source for r in results] == [f"image[{i}]" for i in range(4)]
    assert recording.events == [("predict", 2), ("predict", 2)]


def test_an_error_while_preprocessing_ahead_propagates(model, monkeypatch):
    original = tagger_core.preprocess_image

    def failing(image, size):
        if image.size == (13, 13):
            raise RuntimeError("boom in preprocessing")
        return original(image, size)

    monkeypatch.setattr(tagger_core, "preprocess_image", failing)
    images = [image_for(SCENES[0]), image_for(SCENES[1]), Image.new("RGB", (13, 13)), image_for(SCENES[2])]
    with pytest.raises(RuntimeError, match="boom in preprocessing"):
        tag_images(model, images, batch_size=2)


def test_an_error_in_the_session_propagates_and_stops_the_prefetch(model, monkeypatch):
    prepared = []
    original = tagger_core._prepare_batch

    def prepare(m, items, start):
        prepared.append(start)
        return original(m, items, start)

    def fail(n):
        raise RuntimeError("session failed")

    monkeypatch.setattr(tagger_core, "_prepare_batch", prepare)
    images = [image_for(SCENES[i % len(SCENES)]) for i in range(8)]
    with pytest.raises(RuntimeError, match="session failed"):
        tag_images(Recording(model, on_predict=fail), images, batch_size=2)
    # batch 2 may or may not have started before the failure cancelled it; never any later one
    assert prepared in ([0], [0, 2])


def test_area_resize_is_the_exact_area_average():
    """Against a brute-force rational reference (overlap areas with Fractions, round half to even)."""
    from fractions import Fraction

    def reference(arr, size):
        h, w = arr.shape[:2]
        out = np.zeros((size, size, arr.shape[2]), np.uint8)
        for oy in range(size):
            y0, y1 = Fraction(oy * h, size), Fraction((oy + 1) * h, size)
            for ox in range(size):
                x0, x1 = Fraction(ox * w, size), Fraction((ox + 1) * w, size)
                for c in range(arr.shape[2]):
                    acc = Fraction(0)
                    for y in range(int(y0), min(h, -(-y1.numerator // y1.denominator))):
                        wy = min(y1, y + 1) - max(y0, y)
                        for x in range(int(x0), min(w, -(-x1.numerator // x1.denominator))):
                            acc += wy * (min(x1, x + 1) - max(x0, x)) * int(arr[y, x, c])
                    out[oy, ox, c] = round(acc / ((y1 - y0) * (x1 - x0)))
        return out

    rng = np.random.default_rng(3)
    for (h, w), size in [((16, 16), 7), ((9, 9), 4), ((13, 11), 6), ((3, 3), 2), ((8, 8), 4)]:
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(area_resize(arr, size), reference(arr, size)), (h, w, size)
    # ties: a 2x1 cell of 0 and 1 averages to exactly 0.5 -> 0 (half to even), 1 and 2 -> 2
    ties = np.array([[[0] * 3, [1] * 3, [1] * 3, [2] * 3]] * 2, np.uint8)
    assert area_resize(ties, 2)[:, :, 0].tolist() == [[0, 2], [0, 2]]


def test_area_resize_only_downscales():
    with pytest.raises(ValueError, match="only downscales"):
        area_resize(np.zeros((4, 4, 3), np.uint8), 5)
