"""Data cases: WD14 tagging, Preprocess with several workers, LoadDataset on 10k/100k files.

These need only the pack's pure core (`hypernet`), imported top-level; no ComfyUI.
"""
from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from .harness import import_pure_core, interleaved, load_support_module, median, peak_rss_bytes, rss_bytes


# ------------------------------------------------------------------ tagger


def conv_tagger_proto(size: int, n_tags: int, width: int = 32, seed: int = 0):
    """A WD14-signature ONNX stand-in with real arithmetic: NHWC float32 [batch, S, S, 3] in,
    [batch, n_tags] sigmoid probabilities out; a 4x4/4 patchify conv, two 3x3 convs at S/4,
    a 2x2/2 conv, two 3x3 convs at S/8, global average pool, linear head. Random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], [helper.make_node("Transpose", ["input_1"], ["x0"], perm=[0, 3, 1, 2])]

    def conv(name, src, cin, cout, kernel, stride):
        w = (rng.standard_normal((cout, cin, kernel, kernel)) / np.sqrt(cin * kernel * kernel)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"{name}_w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"))
        pad = (kernel - 1) // 2 if stride == 1 else 0
        nodes.append(helper.make_node("Conv", [src, f"{name}_w", f"{name}_b"], [f"{name}_c"],
                                      kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4))
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
        return name

    x = conv("stem", "x0", 3, width, 4, 4)
    x = conv("a1", x, width, width, 3, 1)
    x = conv("a2", x, width, width, 3, 1)
    x = conv("down", x, width, 2 * width, 2, 2)
    x = conv("b1", x, 2 * width, 2 * width, 3, 1)
    x = conv("b2", x, 2 * width, 2 * width, 3, 1)
    head = (rng.standard_normal((2 * width, n_tags)) / np.sqrt(2 * width)).astype(np.float32)
    inits += [numpy_helper.from_array(head, "head"),
              numpy_helper.from_array(np.array([-1, 2 * width], np.int64), "flat")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["pooled"]),
              helper.make_node("Reshape", ["pooled", "flat"], ["feat"]),
              helper.make_node("MatMul", ["feat", "head"], ["logits"]),
              helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"])]
    graph = helper.make_graph(
        nodes, "bench_wd14_standin",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", n_tags])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hn_bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    flops = 0
    side = size // 4
    flops += 2 * 3 * 16 * width * side * side
    flops += 2 * 2 * 9 * width * width * side * side
    side //= 2
    flops += 2 * 4 * width * 2 * width * side * side
    flops += 2 * 2 * 9 * (2 * width) ** 2 * side * side
    return model, flops


def _photo(width: int, height: int, seed: int):
    """A photo-like RGB image (smooth gradients plus noise), so PNG/JPEG coders do real work."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=-1) * 200
    noise = rng.normal(0, 20, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _session_factory(threads: int):
    def factory(model_path: str, providers: list[str]):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        return ort.InferenceSession(model_path, sess_options=opts, providers=providers)
    return factory


def case_tagger(args: dict[str, Any]) -> dict[str, Any]:
    """Images per second: the pack's tagging path (`hypernet.tagger.pipeline.tag_images` on decoded PIL
    images: pad, area-resize, BGR, batching, session, tag selection; the next batch preprocessed
    on a helper thread while the session runs) vs. a bare `session.run` on the already
    preprocessed float32 batch, same session, same batch size. Measured on the wall clock (the
    prefetch hides preprocessing time, it does not remove CPU work); the CPU-time figures too."""
    import_pure_core()
    from hypernet.tagger import pipeline as tagger

    fake = load_support_module("fake_tagger")
    size, batch, count = args["size"], args["batch"], args["images"]
    folder = Path(tempfile.mkdtemp(prefix="hn_bench_tagger_"))
    try:
        results = {}
        images = [_photo(args["image_width"], args["image_height"], seed) for seed in range(count)]
        kinds = {"standin": None, "fake": None}
        proto, flops = conv_tagger_proto(size, len(fake.TAGS), width=args["standin_width"])
        (folder / "standin.onnx").write_bytes(proto.SerializeToString())
        (folder / "standin.csv").write_text(fake.tags_csv())
        kinds["standin"] = tagger.TaggerFiles("standin", folder / "standin.onnx", folder / "standin.csv")
        model_path, csv_path = fake.build_fake_tagger(folder, name="fake", size=size)
        kinds["fake"] = tagger.TaggerFiles("fake", model_path, csv_path)
        for kind, files in kinds.items():
            model = tagger.load_tagger(files, device="cpu", factory=_session_factory(args["threads"]))
            arrays = np.stack([tagger.preprocess_image(im, model.input_size) for im in images])
            chunks = [arrays[i:i + batch] for i in range(0, count, batch)]

            def bare(model=model, chunks=chunks):
                for chunk in chunks:
                    model.session.run([model.output_name], {model.input_name: chunk})

            def ours(model=model):
                tagger.tag_images(model, images, batch_size=batch)

            def preprocess_only(model=model):
                for im in images:
                    tagger.preprocess_image(im, model.input_size)

            variants = {"baseline": bare, "ours": ours}
            if kind == "fake":
                variants = {"preprocess": preprocess_only}
            times = interleaved(variants, warmup=1, repeats=args["repeats"], clock=args["clock"])
            results[kind] = {name: count / median(values) for name, values in times.items()}
            results[kind]["rounds"] = times
        other = "cpu" if args["clock"] == "wall" else "wall"
        out = {"baseline": results["standin"]["baseline"], "ours": results["standin"]["ours"],
               f"baseline@{other}": results["standin"][f"baseline@{other}"],
               f"ours@{other}": results["standin"][f"ours@{other}"],
               "rounds": results["standin"]["rounds"],
               "standin_gflops_per_image": flops / 1e9,
               "preprocess_ms_per_image": 1000.0 / results["fake"]["preprocess"]}
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ preprocess


def _hash_work(workers: int, tasks: int = 8):
    """Control for the speed-up the machine allows right now: sha256 of 8 MB buffers (hashlib
    releases the GIL on large inputs), split over `workers` threads."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    data = bytes(8 * 1024 * 1024)

    def go():
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda _: hashlib.sha256(data).digest(), range(tasks)))
    return go


def case_preprocess(args: dict[str, Any]) -> dict[str, Any]:
    """Source images per second through `hypernet.preprocess.pipeline` (crop to 512x512, PNG + caption
    written), with 1 worker (baseline) and with `workers` (ours); interleaved, wall clock."""
    import_pure_core()
    from hypernet.data.load import load_dataset
    from hypernet.preprocess.pipeline import preprocess
    from hypernet.preprocess.preprocess_config import PreprocessConfig

    folder = Path(tempfile.mkdtemp(prefix="hn_bench_pre_"))
    try:
        src = folder / "src"
        src.mkdir()
        for index in range(args["images"]):
            _photo(args["image_width"], args["image_height"], index).save(src / f"{index:04d}.jpg", quality=92)
            (src / f"{index:04d}.txt").write_text("a photo, gradient")
        dataset = load_dataset(str(src)).dataset
        runs = {"n": 0}

        def run(workers):
            def go():
                runs["n"] += 1
                out = folder / f"out{runs['n']}"
                cfg = PreprocessConfig(width=512, height=512, mode="crop", output_directory=str(out),
                                       workers=workers)
                preprocess(dataset, cfg)
                shutil.rmtree(out, ignore_errors=True)
            return go

        load_before = os.getloadavg()[0]
        times = interleaved({"baseline": run(1), "ours": run(args["workers"]),
                             "ceiling_1": _hash_work(1), "ceiling_n": _hash_work(args["workers"])},
                            warmup=1, repeats=args["repeats"], clock="wall")
        count = args["images"]
        return {"baseline": count / median(times["baseline"]), "ours": count / median(times["ours"]),
                "ceiling": median(times["ceiling_1"]) / median(times["ceiling_n"]),
                "samples": times, "load_average": [load_before, os.getloadavg()[0]],
                "cpu_count": os.cpu_count()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ LoadDataset


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    _photo(16, 16, 0).save(buf, format="PNG")
    return buf.getvalue()


def case_make_files(args: dict[str, Any]) -> dict[str, Any]:
    """Write `count` copies of one small valid PNG plus a caption each into `folder`."""
    folder = Path(args["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    data = _tiny_png()
    started = time.perf_counter()
    for index in range(args["count"]):
        stem = f"img_{index:06d}"
        with open(folder / f"{stem}.png", "wb") as fh:
            fh.write(data)
        with open(folder / f"{stem}.txt", "w", encoding="utf-8") as fh:
            fh.write(f"a tiny picture, number {index}, gradient")
    return {"png_bytes": len(data), "seconds": time.perf_counter() - started}


def case_load_dataset(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds (CPU, wall) to scan `folder` with load_dataset, or, with mode="memory", the bytes
    tracemalloc sees retained by the result (and at peak) per item."""
    import_pure_core()
    from hypernet.data.load import load_dataset

    folder = args["folder"]
    if args["mode"] == "memory":
        gc.collect()
        tracemalloc.start()
        start_current, _ = tracemalloc.get_traced_memory()
        result = load_dataset(folder)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n = len(result.dataset)
        return {"items": n, "retained_per_item": (current - start_current) / n,
                "peak_per_item": (peak - start_current) / n}
    rss_before = rss_bytes()
    times = {"cpu": [], "wall": []}
    n = 0
    for _ in range(args.get("repeats", 1)):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = load_dataset(folder)
        times["cpu"].append(time.process_time() - cpu0)
        times["wall"].append(time.perf_counter() - wall0)
        n = len(result.dataset)
        del result
    return {"items": n, "cpu": median(times["cpu"]), "wall": median(times["wall"]), "samples": times,
            "rss_growth_per_item": (peak_rss_bytes() - rss_before) / max(1, n)}


def case_load_scaling(args: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds of load_dataset on the large folder vs `factor` scans of the small one, in
    interleaved rounds (large, then small x factor; the order alternates): both sides do the same
    amount of work each round, so the per-round ratio is about how the scan scales, not about load
    from other processes. One warm-up round fills the OS caches for both folders."""
    import_pure_core()
    from hypernet.data.load import load_dataset

    small, large, factor = args["small"], args["large"], int(args["factor"])

    def scan(folder: str) -> float:
        gc.collect()
        started = time.process_time()
        result = load_dataset(folder)
        spent = time.process_time() - started
        del result
        return spent

    rounds = {"large": [], "small": []}
    for round_index in range(args["rounds"] + 1):
        order = ["large", "small"] if round_index % 2 == 0 else ["small", "large"]
        took = {}
        for side in order:
            took[side] = scan(large) if side == "large" else sum(scan(small) for _ in range(factor))
        if round_index:  # round 0 is the warm-up
            for side, spent in took.items():
                rounds[side].append(spent)
    return {"large": rounds["large"], "small_times_factor": rounds["small"]}


CASES = {
    "load_scaling": case_load_scaling,
    "tagger": case_tagger,
    "preprocess": case_preprocess,
    "make_files": case_make_files,
    "load_dataset": case_load_dataset,
}
