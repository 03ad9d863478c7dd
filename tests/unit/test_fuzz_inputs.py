"""Fuzz-style: generated bad names, file metadata, axis ranges and settings reach the loaders and
validators, and every one of them is a clear ValueError/FileNotFoundError, never a TypeError,
RecursionError, OverflowError or anything else a user cannot act on."""
from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import save_file

from hypernet.grid.values import AxisContext, AxisType, check_grid_size, parse_axis
from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import load_pt, load_safetensors, save_safetensors
from hypernet.network.module import METADATA_KEYS, Hypernetwork
from hypernet.train.checkpoints import RunFolder
from hypernet.train.train_config import TrainConfig
from hypernet.util.names import MAX_NAME_BYTES, safe_name, safe_relative_name

CLEAR = (ValueError, FileNotFoundError)
SEED = 1313


def odd_values(rng: random.Random, count: int) -> list:
    """Values of every JSON/pickle-able kind a hostile or broken file could hold."""
    fixed = ["", "abc", " ", "\x00", "../../x", 0, -1, 1, 2**64, -2**70, 1e308, -1e308, 1e-320, float("nan"),
             float("inf"), True, False, None, [], [1], ["a"], [None], [[1]], {}, {"a": 1}, [1.5, "x"],
             "x" * 5000, [2**80], [0.5] * 300]
    out = list(fixed)
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            out.append("".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(1, 40))))
        elif kind == 1:
            out.append(float(f"{rng.choice('+-')}1e{rng.randrange(-330, 330)}") if rng.random() < 0.5
                       else rng.randrange(-2**70, 2**70))
        elif kind == 2:
            out.append([rng.choice([1, "a", None, 2.5, True, [1]]) for _ in range(rng.randrange(0, 6))])
        elif kind == 3:
            out.append({str(rng.randrange(100)): rng.choice([1, "a", None]) for _ in range(rng.randrange(0, 4))})
        else:
            out.append(rng.choice(["relu", "linear", "Normal", "tanh", "swish"]) + rng.choice(["", "x", "\n"]))
    return out


def bad_names(rng: random.Random) -> list:
    names = ["", " ", ".", "..", "../x", "a/b", "a\\b", "/tmp/x", "../../../../tmp/x", "\x00", "a\x00b", "a\nb",
             ".hidden", " lead", "trail ", "x" * 5000, "é" * (MAX_NAME_BYTES // 2 + 1), None, 5, b"bytes",
             ["a"], "\ud800"]
    for _ in range(60):
        stem = "".join(rng.choice("ab./\\\x00\n ") for _ in range(rng.randrange(1, 12)))
        names.append(stem)
    return names


def expect_clear(call, *args, **kwargs):
    """Run `call`; it may succeed, else it must raise a clear error whose message is not empty."""
    try:
        return call(*args, **kwargs)
    except CLEAR as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None


def test_bad_names_never_become_paths(tmp_path):
    rng = random.Random(SEED)
    for name in bad_names(rng):
        accepted = expect_clear(safe_name, name, "name")
        if accepted is not None:
            path = (tmp_path / accepted).resolve()
            assert path.parent == tmp_path.resolve(), f"{name!r} left the folder"
            continue
        with pytest.raises(ValueError, match="name"):
            RunFolder(tmp_path, name)
        relative = expect_clear(safe_relative_name, name, "file")
        if relative is not None:
            assert tmp_path.resolve() in (tmp_path / relative).resolve().parents


def test_good_names_pass_unchanged():
    for name in ("my_style", "style v2.1", "a-b_c", "x" * MAX_NAME_BYTES, "名前"):
        assert safe_name(name, "name") == name
    assert safe_relative_name("sub/net.pt", "file") == "sub/net.pt"


def _network() -> Hypernetwork:
    return Hypernetwork.create(HypernetworkConfig(name="fuzz", sizes=[8], activation_func="relu", seed=1))


def test_odd_metadata_in_safetensors_files(tmp_path):
    rng = random.Random(SEED)
    good = tmp_path / "good.safetensors"
    save_safetensors(_network(), good)
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = json.loads(fh.metadata()["hypernetwork"])
    keys = list(METADATA_KEYS) + ["sizes", "extra_key", "768"]
    for index, value in enumerate(odd_values(rng, 40)):
        key = keys[index % len(keys)]
        try:
            text = json.dumps(dict(meta, **{key: value}))
        except ValueError:
            continue
        path = tmp_path / f"odd_{index}.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt", "hypernetwork": text})
        expect_clear(load_safetensors, path)
    for header in ("[1, 2]", '"text"', "{", "[" * 100_000 + "]" * 100_000, '{"sizes": ' + "[" * 50_000 + "]" * 50_000
                   + "}", json.dumps(dict(meta, sizes="abc"))):
        path = tmp_path / "header.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt", "hypernetwork": header})
        with pytest.raises(ValueError, match="header.safetensors"):
            load_safetensors(path)


def test_odd_metadata_and_states_in_pt_files(tmp_path):
    rng = random.Random(SEED + 1)
    base = _network().to_a1111_dict()
    keys = list(METADATA_KEYS) + ["extra_key"]
    for index, value in enumerate(odd_values(rng, 40)):
        data = dict(base)
        data[keys[index % len(keys)]] = value
        path = tmp_path / f"odd_{index}.pt"
        torch.save(data, path)
        expect_clear(load_pt, path)
    broken_states = [None, "abc", 5, [], ({},), ({}, {}), ({"linear.0.weight": "abc"}, {}),
                     ({"linear.0.weight": torch.zeros(3)}, {}), [{"linear.0.weight": 1}, {"x": None}],
                     ({"linear.0.weight": torch.zeros(8, 8, dtype=torch.int64)}, {})]
    for index, state in enumerate(broken_states):
        path = tmp_path / f"state_{index}.pt"
        torch.save({8: state, "name": "x"}, path)
        with pytest.raises(ValueError):
            load_pt(path)
    for index, data in enumerate([{-5: ({}, {})}, {2**70: ({}, {})}, [1, 2], "text", {"name": "x"}, None]):
        path = tmp_path / f"top_{index}.pt"
        torch.save(data, path)
        with pytest.raises(ValueError):
            load_pt(path)


def test_generated_axis_ranges(tmp_path):
    rng = random.Random(SEED + 2)
    texts = ["0-100 (+1e-320)", "0-1e308 (+1e-308)", "1e308-(-1e308)", "-1e308-1e308 (+1)", "0-100 [99999999999]",
             "1-2 (+0)", "1-5 (-1)", "1e400", "nan", "inf-inf", "0-1e-320 (+1e-324)", "9" * 400, "1-" + "9" * 400,
             "0-100 (+" + "0" * 400 + "1)"]
    for _ in range(150):
        parts = [rng.choice(["", "-", "+"]) + rng.choice(["0", "1", "1e308", "1e-320", "7.5", "1e-5", "3"])
                 for _ in range(3)]
        step = rng.choice(["", f" (+{parts[2]})", f" (-{parts[2]})", f" [{rng.randrange(-1, 2000)}]"])
        texts.append(f"{parts[0]}-{parts[1]}{step}")
    context = AxisContext(samplers=["euler"], schedulers=["normal"], prompt="a cat")
    for text in texts:
        for axis_type in (AxisType.STRENGTH, AxisType.STEPS, AxisType.SEED, AxisType.CFG, AxisType.CLIP_SKIP):
            expect_clear(parse_axis, axis_type, text, context)
    for cells, width, height in ((401, 64, 64), (10**30, 64, 64), (4, 10**9, 10**9), (0, 1, 1), (1, 0, 5)):
        with pytest.raises(ValueError):
            check_grid_size(cells, width, height)


def test_generated_training_settings():
    rng = random.Random(SEED + 3)
    fields = list(TrainConfig().to_dict())
    values = odd_values(rng, 30)
    for index in range(len(fields) * 3):
        field = fields[index % len(fields)]
        value = values[(index * 7) % len(values)]
        expect_clear(TrainConfig.from_dict, {field: value})
    for text in ("", "[]", "{", '{"config": 5}', '{"steps": "many"}', "[" * 100_000):
        with pytest.raises(ValueError):
            TrainConfig.from_json(text, "settings_json")
