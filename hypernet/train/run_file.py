"""The run file: everything one Train Hypernetwork run needs, as JSON, for the headless runner.

Written by the node (`export_run_file`) and read by `scripts/train_run.py`. It holds the resolved
training settings (`TrainConfig.to_dict()`), the preview settings, where the starting network
comes from (a file in the hypernetworks folders, or a copy saved next to the run file) with its
sha256, the dataset as the node saw it (after Preprocess and tagging: items, captions, repeats),
and the loader node that gave the node its MODEL/CLIP/VAE, with the sha256 of the checkpoint file
it names.

A run file is hostile input: `RunFile.from_json` checks every type and refuses anything else; the
runner then resolves names inside the host's folders and checks the hashes (`nodes/headless.py`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..data.dataset import Dataset
from ..util.names import safe_name, safe_relative_name
from .config import TrainConfig
from .preview import PreviewSettings

RUN_FORMAT = "comfyui-hypernetwork-run"
RUN_VERSION = 1
RUN_SUFFIX = ".run.json"
START_SUFFIX = ".start.pt"
MAX_RUN_FILE_BYTES = 64 * 2**20  # a dataset of ~100k captioned items fits
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SCALARS = (str, int, float, bool)


def _fail(field: str, problem: str) -> ValueError:
    return ValueError(f"run file: {field} {problem}; export the run file again from Train Hypernetwork")


def _need(data: Mapping, key: str, kind: type | tuple, where: str) -> Any:
    if key not in data:
        raise _fail(f"{where}{key}", "is missing")
    value = data[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise _fail(f"{where}{key}", f"must be a number, not {value!r}")
    if not isinstance(value, kind):
        raise _fail(f"{where}{key}", f"has the wrong type ({type(value).__name__})")
    return value


def _sha(data: Mapping, key: str, where: str) -> str:
    value = _need(data, key, str, where)
    if not _SHA256.match(value):
        raise _fail(f"{where}{key}", "must be a sha256 (64 lower-case hex digits)")
    return value


@dataclass(frozen=True)
class NetworkSource:
    """The network to start from: `file` in the hypernetworks folders (continued with its `.optim`,
    as the node does), or `start_file`, a copy saved next to the run file. `sha256` is of that file."""

    file: str | None
    start_file: str | None
    sha256: str

    @classmethod
    def from_dict(cls, data: Any) -> "NetworkSource":
        if not isinstance(data, dict):
            raise _fail("network", "must be an object")
        file, start = data.get("file"), data.get("start_file")
        if (file is None) == (start is None):
            raise _fail("network", "must name exactly one of 'file' and 'start_file'")
        if file is not None:
            safe_relative_name(file, "run file: network.file")
        if start is not None:
            if not isinstance(start, str) or not start.endswith(START_SUFFIX):
                raise _fail("network.start_file", f"must be a file name ending in {START_SUFFIX}")
            safe_name(start, "run file: network.start_file")  # a name next to the run file, never a path
        return cls(file, start, _sha(data, "sha256", "network."))


@dataclass(frozen=True)
class LoaderNode:
    """The graph node that loaded MODEL, CLIP and VAE: its class, literal inputs, and the sha256 of
    the model file it names (`file_input`), when it names one."""

    node_id: str
    class_type: str
    inputs: dict[str, Any]
    outputs: dict[str, int]  # "model"/"clip"/"vae" -> output index
    file_input: str | None = None
    sha256: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> "LoaderNode":
        if not isinstance(data, dict):
            raise _fail("base_model", "must be an object")
        node_id = _need(data, "node_id", str, "base_model.")
        class_type = _need(data, "class_type", str, "base_model.")
        if not re.match(r"^[A-Za-z0-9_.+\- ]{1,200}$", class_type):
            raise _fail("base_model.class_type", "is not a node class name")
        inputs = _need(data, "inputs", dict, "base_model.")
        for key, value in inputs.items():
            if not isinstance(value, _SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
                raise _fail(f"base_model.inputs.{key}", "must be a text, number or true/false value")
        outputs = _need(data, "outputs", dict, "base_model.")
        if set(outputs) != {"model", "clip", "vae"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 64 for v in outputs.values()):
            raise _fail("base_model.outputs", "must map model, clip and vae to output numbers")
        file_input = data.get("file_input")
        sha = None
        if file_input is not None:
            if not isinstance(file_input, str) or not isinstance(inputs.get(file_input), str):
                raise _fail("base_model.file_input", "must name a text input of the loader")
            safe_relative_name(inputs[file_input], f"run file: base_model.inputs.{file_input}")
            sha = _sha(data, "sha256", "base_model.")
        return cls(node_id, class_type, dict(inputs), dict(outputs), file_input, sha)


@dataclass(frozen=True)
class RunFile:
    name: str
    config: TrainConfig
    preview: PreviewSettings
    resume: bool
    overwrite: bool
    network: NetworkSource
    dataset: Dataset
    base_model: LoaderNode
    train_node_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": RUN_FORMAT, "version": RUN_VERSION, "name": self.name, "config": self.config.to_dict(),
                "preview": asdict(self.preview), "resume": self.resume, "overwrite": self.overwrite,
                "network": asdict(self.network), "dataset": self.dataset.to_dict(),
                "base_model": asdict(self.base_model), "train_node_id": self.train_node_id}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> "RunFile":
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            raise ValueError(f"run file: not a run file (format must be {RUN_FORMAT!r}); export one with "
                             "Train Hypernetwork's export_run_file")
        if data.get("version") != RUN_VERSION:
            raise _fail("version", f"{data.get('version')!r} is not supported (this pack reads {RUN_VERSION})")
        known = {"format", "version", "name", "config", "preview", "resume", "overwrite", "network", "dataset",
                 "base_model", "train_node_id"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _fail(str(unknown), "are unknown fields")
        name = safe_name(_need(data, "name", str, ""), "run file: name")
        try:
            config = TrainConfig.from_dict(_need(data, "config", dict, ""))
        except (TypeError, ValueError) as exc:
            raise _fail("config", f"is invalid ({exc})") from None
        preview = _preview(_need(data, "preview", dict, ""))
        items = _need(data, "dataset", dict, "").get("items")
        if not isinstance(items, list):
            raise _fail("dataset.items", "must be a list")
        for index, item in enumerate(items):
            where = f"dataset.items[{index}]."
            if not isinstance(item, dict):
                raise _fail(where[:-1], "must be an object")
            for key in ("width", "height", "repeats"):
                _need(item, key, int, where)
        try:
            dataset = Dataset.from_dict(data["dataset"])
        except (TypeError, ValueError) as exc:
            raise _fail("dataset", f"is invalid ({exc})") from None
        if not dataset.items:
            raise _fail("dataset", "has no items")
        return cls(name, config, preview, _need(data, "resume", bool, ""), _need(data, "overwrite", bool, ""),
                   NetworkSource.from_dict(data.get("network")), dataset, LoaderNode.from_dict(data.get("base_model")),
                   _need(data, "train_node_id", str, ""))

    @classmethod
    def from_json(cls, text: str | bytes) -> "RunFile":
        if len(text) > MAX_RUN_FILE_BYTES:
            raise _fail("", f"is larger than {MAX_RUN_FILE_BYTES // 2**20} MiB")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"run file: not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError("run file: the JSON is nested too deeply") from None
        return cls.from_dict(data)


def _preview(data: Mapping) -> PreviewSettings:
    values = {}
    for spec in fields(PreviewSettings):
        kind = {"cfg": (int, float)}.get(spec.name, type(spec.default))
        value = _need(data, spec.name, kind, "preview.")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(f"preview.{spec.name}", "must be finite")
        values[spec.name] = value
    unknown = sorted(set(data) - set(values))
    if unknown:
        raise _fail(f"preview {unknown}", "are unknown fields")
    if values["steps"] < 1 or not 0 <= values["seed"] < 2**64:
        raise _fail("preview.steps/seed", "are out of range")
    return PreviewSettings(**values)
