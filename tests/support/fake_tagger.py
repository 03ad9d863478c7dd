"""A tiny stand-in WD14 tagger built with the `onnx` helper API (tests only).

Signature as a real WD14 model: input NHWC float32 [batch, S, S, 3] (batch dynamic unless asked
otherwise), output [batch, N] probabilities. The image is cut into a GRID x GRID grid; feature
f = 3 * region + c is the mean of BGR channel c over that region, scaled to 0..1, and tag i reads
feature i only:  p_i = sigmoid(STEEPNESS * (0.5 - f_i)).  White (255) gives ~0.007 (so white
padding triggers nothing), black gives ~0.993. `image_for` crafts an S x S image that yields
chosen probabilities, so tests can trigger specific tags.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from hypernet.util.atomic import atomic_write_bytes, atomic_write_text

SIZE = 32
GRID = 4
STEEPNESS = 10.0
OPSET = 17

RATINGS = ["general", "sensitive", "questionable", "explicit"]
GENERAL = [
    "1girl", "long_hair", "smile", "^_^", "hat_(object)", "red_eyes", ">_<", "solo",
    "(o)_(o)", "open_mouth", "short_hair", "blue_sky",
]
CHARACTERS = ["hatsune_miku", "kirisame_marisa_(touhou)", "c.c.", "rem_(re:zero)"]
TAGS: list[tuple[str, int]] = (
    [(n, 9) for n in RATINGS] + [(n, 0) for n in GENERAL] + [(n, 4) for n in CHARACTERS]
)
TAG_NAMES = [n for n, _ in TAGS]


def tags_csv(rows: Sequence[tuple[str, int]] = TAGS) -> str:
    lines = ["tag_id,name,category,count"]
    for i, (name, cat) in enumerate(rows):
        quoted = f'"{name}"' if "," in name else name
        lines.append(f"{1000 + i},{quoted},{cat},{100 - i}")
    return "\n".join(lines) + "\n"


def build_model_proto(size: int = SIZE, n_tags: int = len(TAGS), batch: int | None = None):
    """The fake tagger as an onnx.ModelProto (onnx imported here so TAGS work without it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if size % GRID:
        raise ValueError("size must be a multiple of GRID")
    n_feat = 3 * GRID * GRID
    if n_tags > n_feat:
        raise ValueError(f"at most {n_feat} tags")
    cell = size // GRID
    select = np.zeros((n_feat, n_tags), dtype=np.float32)
    select[np.arange(n_tags), np.arange(n_tags)] = 1.0
    inits = [
        numpy_helper.from_array(np.array([-1, GRID, cell, GRID, cell, 3], dtype=np.int64), "grid_shape"),
        numpy_helper.from_array(np.array([-1, n_feat], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(1.0 / 255.0, dtype=np.float32), "inv255"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(STEEPNESS, dtype=np.float32), "steep"),
        numpy_helper.from_array(select, "select"),
    ]
    nodes = [
        helper.make_node("Reshape", ["input_1", "grid_shape"], ["cells"]),
        helper.make_node("ReduceMean", ["cells"], ["means"], axes=[2, 4], keepdims=0),
        helper.make_node("Reshape", ["means", "flat_shape"], ["feat255"]),
        helper.make_node("Mul", ["feat255", "inv255"], ["feat"]),
        helper.make_node("MatMul", ["feat", "select"], ["picked"]),
        helper.make_node("Sub", ["half", "picked"], ["centred"]),
        helper.make_node("Mul", ["centred", "steep"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    bdim: int | str = batch if batch is not None else "batch"
    graph = helper.make_graph(
        nodes, "fake_wd14",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [bdim, size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, [bdim, n_tags])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fake_tagger")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_fake_tagger(
    folder: Path,
    name: str = "fake-tagger",
    layout: str = "flat",
    size: int = SIZE,
    batch: int | None = None,
    n_tags: int | None = None,
    rows: Sequence[tuple[str, int]] = TAGS,
) -> tuple[Path, Path]:
    """Write the model and CSV; returns (model path, csv path). `n_tags` != len(rows) makes a mismatch."""
    folder = Path(folder)
    if layout == "flat":
        model_path, csv_path = folder / f"{name}.onnx", folder / f"{name}.csv"
    else:
        model_path, csv_path = folder / name / "model.onnx", folder / name / "selected_tags.csv"
    proto = build_model_proto(size, len(rows) if n_tags is None else n_tags, batch)
    atomic_write_bytes(model_path, proto.SerializeToString())
    atomic_write_text(csv_path, tags_csv(rows))
    return model_path, csv_path


def prob_for_value(value: float) -> float:
    """Probability the fake model gives a feature whose region/channel mean is `value` (0..255)."""
    return 1.0 / (1.0 + math.exp(-STEEPNESS * (0.5 - value / 255.0)))


def value_for_prob(p: float) -> int:
    logit = math.log(p / (1.0 - p))
    return int(np.clip(round(255.0 * (0.5 - logit / STEEPNESS)), 0, 255))


def image_for(probs: Mapping[str, float], size: int = SIZE, names: Sequence[str] = TAG_NAMES) -> Image.Image:
    """S x S RGB image for which the fake model outputs ~probs[tag] (others ~0.007)."""
    arr = np.full((size, size, 3), 255, dtype=np.uint8)
    cell = size // GRID
    for tag, p in probs.items():
        i = list(names).index(tag)
        region, bgr_channel = divmod(i, 3)
        r, c = divmod(region, GRID)
        arr[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell, 2 - bgr_channel] = value_for_prob(p)
    return Image.fromarray(arr, "RGB")


def loaded_fake_tagger(folder: Path):
    """Yield the stand-in tagger built in `folder` and loaded on the CPU (for a module fixture);
    the tagger cache is emptied before and after, so other tests load their own."""
    from hypernet.tagger.pipeline import load_tagger, resolve_tagger, unload_all

    build_fake_tagger(folder, "fake")
    unload_all()
    yield load_tagger(resolve_tagger("fake", [folder]), device="cpu")
    unload_all()
