"""Sessions: provider choice and CPU fallback, per-path cache, optional onnxruntime, bad models."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from hypernet.tagger import model as tagger_model
from hypernet.tagger.errors import TaggerDependencyError, TaggerFilesMissingError, TaggerModelError
from hypernet.tagger.files import TaggerFiles, resolve_tagger
from hypernet.tagger.model import (
    CPU_PROVIDER,
    build_model,
    choose_providers,
    create_session,
    load_tagger,
    unload,
    unload_all,
)
from tests.support.fake_tagger import TAGS, build_fake_tagger, tags_csv

CUDA = "CUDAExecutionProvider"


@pytest.fixture(autouse=True)
def _empty_cache():
    unload_all()
    yield
    unload_all()


class FakeSession:
    def __init__(self, providers, n_out=len(TAGS), in_shape=("batch", 8, 8, 3), fail_run=False):
        self.providers = providers
        self.n_out = n_out
        self.in_shape = list(in_shape)
        self.fail_run = fail_run

    def get_providers(self):
        return list(self.providers)

    def get_inputs(self):
        return [SimpleNamespace(name="in", shape=self.in_shape)]

    def get_outputs(self):
        return [SimpleNamespace(name="out", shape=["batch", "n"])]

    def run(self, names, feeds):
        if self.fail_run:
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
        x = feeds["in"]
        return [np.full((x.shape[0], self.n_out), 0.5, dtype=np.float32)]


def gpu_broken_factory(calls):
    def factory(path, providers):
        calls.append(list(providers))
        if CUDA in providers:
            raise RuntimeError("CUDA_PATH is set but CUDA wasn't able to be loaded")
        return FakeSession(providers)
    return factory


def test_choose_providers():
    avail = ["TensorrtExecutionProvider", CUDA, "AzureExecutionProvider", CPU_PROVIDER]
    assert choose_providers(avail) == [CUDA, CPU_PROVIDER]
    assert choose_providers([CPU_PROVIDER]) == [CPU_PROVIDER]
    assert choose_providers(avail, "cpu") == [CPU_PROVIDER]
    assert choose_providers(avail, "TensorrtExecutionProvider") == ["TensorrtExecutionProvider", CPU_PROVIDER]
    with pytest.raises(ValueError, match="device"):
        choose_providers([CPU_PROVIDER], CUDA)


def test_gpu_failure_falls_back_to_cpu_with_one_warning(tmp_path, caplog):
    calls = []
    with caplog.at_level(logging.WARNING, logger="hypernet.tagger.model"):
        session, used = create_session(tmp_path / "m.onnx", [CUDA, CPU_PROVIDER], gpu_broken_factory(calls))
    assert used == [CPU_PROVIDER] and isinstance(session, FakeSession)
    assert calls == [[CUDA, CPU_PROVIDER], [CPU_PROVIDER]]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CPU" in warnings[0].getMessage()


def test_silent_ort_fallback_is_reported_once(tmp_path, caplog):
    factory = lambda path, providers: FakeSession([CPU_PROVIDER])  # noqa: E731  ORT dropped CUDA itself
    with caplog.at_level(logging.WARNING, logger="hypernet.tagger.model"):
        _, used = create_session(tmp_path / "m.onnx", [CUDA, CPU_PROVIDER], factory)
    assert used == [CPU_PROVIDER]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_no_warning_on_plain_cpu(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        create_session(tmp_path / "m.onnx", [CPU_PROVIDER], lambda p, pr: FakeSession(pr))
    assert not caplog.records


def test_gpu_run_failure_switches_to_cpu(tmp_path, caplog):
    model_path, csv_path = tmp_path / "m.onnx", tmp_path / "m.csv"
    model_path.write_bytes(b"x")
    csv_path.write_text(tags_csv(), encoding="utf-8")

    def factory(path, providers):
        return FakeSession(providers, fail_run=CUDA in providers)

    model = build_model(TaggerFiles("m", model_path, csv_path), factory=factory, available=[CUDA, CPU_PROVIDER])
    assert model.on_gpu
    with caplog.at_level(logging.WARNING, logger="hypernet.tagger.model"):
        probs = model.predict(np.zeros((2, 8, 8, 3), np.float32))
    assert probs.shape == (2, len(TAGS))
    assert model.providers == [CPU_PROVIDER]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_bad_input_layout_and_dynamic_output_mismatch(tmp_path):
    model_path, csv_path = tmp_path / "m.onnx", tmp_path / "m.csv"
    model_path.write_bytes(b"x")
    csv_path.write_text(tags_csv(), encoding="utf-8")
    files = TaggerFiles("m", model_path, csv_path)
    nchw = lambda p, pr: FakeSession(pr, in_shape=(1, 3, 8, 8))  # noqa: E731
    with pytest.raises(TaggerModelError, match="NHWC"):
        build_model(files, factory=nchw)
    wrong = build_model(files, factory=lambda p, pr: FakeSession(pr, n_out=len(TAGS) + 3))
    with pytest.raises(TaggerModelError, match="m.csv"):
        wrong.predict(np.zeros((1, 8, 8, 3), np.float32))


def test_missing_onnxruntime_gives_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(TaggerDependencyError) as err:
        tagger_model.import_onnxruntime()
    assert "pip install onnxruntime" in str(err.value) and "onnxruntime-gpu" in str(err.value)
    assert isinstance(err.value, ImportError)


def test_tagger_modules_do_not_import_onnxruntime_at_import_time():
    code = (
        "import sys; import hypernet.tagger.pipeline, hypernet.tagger.model, hypernet.tagger.download; "
        "assert 'onnxruntime' not in sys.modules, 'eager import'"
    )
    root = str(importlib.import_module("hypernet").__path__[0]).rsplit("hypernet", 1)[0]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


# --- with the real onnxruntime and the fake model -------------------------------------------------

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="needs onnxruntime and onnx",
)


@needs_ort
def test_input_size_and_batch_read_from_model(tmp_path):
    build_fake_tagger(tmp_path, "s16", size=16)
    build_fake_tagger(tmp_path, "fixed", size=32, batch=1, layout="folder")
    s16 = load_tagger(resolve_tagger("s16", [tmp_path]), device="cpu")
    assert (s16.input_size, s16.fixed_batch) == (16, None)
    fixed = load_tagger(resolve_tagger("fixed", [tmp_path]), device="cpu")
    assert (fixed.input_size, fixed.fixed_batch) == (32, 1)
    out = fixed.predict(np.full((3, 32, 32, 3), 255, np.float32))
    assert out.shape == (3, len(TAGS))


@needs_ort
def test_cache_one_session_per_path_and_unload(tmp_path):
    build_fake_tagger(tmp_path, "a")
    build_fake_tagger(tmp_path, "b")
    fa, fb = resolve_tagger("a", [tmp_path]), resolve_tagger("b", [tmp_path])
    ma = load_tagger(fa, device="cpu")
    assert load_tagger(fa, device="cpu") is ma
    mb = load_tagger(fb, device="cpu")
    assert mb is not ma
    assert unload("a") is True and unload("a") is False
    assert load_tagger(fa, device="cpu") is not ma
    assert unload(str(fb.model_path)) is True
    assert unload_all() == 1 and unload_all() == 0


@needs_ort
def test_corrupt_onnx_is_named_error(tmp_path):
    build_fake_tagger(tmp_path, "bad")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(TaggerModelError) as err:
        load_tagger(resolve_tagger("bad", [tmp_path]), device="cpu")
    assert "bad.onnx" in str(err.value) and "download" in str(err.value)


@needs_ort
def test_csv_model_size_mismatch_is_named_error(tmp_path):
    build_fake_tagger(tmp_path, "mm", n_tags=len(TAGS) - 1)
    with pytest.raises(TaggerModelError) as err:
        load_tagger(resolve_tagger("mm", [tmp_path]), device="cpu")
    assert "mm.csv" in str(err.value) and str(len(TAGS)) in str(err.value)


@needs_ort
def test_missing_model_file(tmp_path):
    (tmp_path / "x.csv").write_text(tags_csv(), encoding="utf-8")
    with pytest.raises(TaggerFilesMissingError, match="x.onnx"):
        build_model(TaggerFiles("x", tmp_path / "x.onnx", tmp_path / "x.csv"), device="cpu")
