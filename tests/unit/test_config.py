"""HypernetworkConfig validation, dropout derivation (A1111's rule) and comma-string parsing."""
from __future__ import annotations

import json

import pytest

from hypernet.network.config import (
    HypernetworkConfig,
    derive_dropout_structure,
    parse_float_list,
    parse_int_list,
)


def test_defaults_are_a1111_create_defaults():
    cfg = HypernetworkConfig(name="style")
    assert cfg.layer_structure == (1.0, 2.0, 1.0)
    assert cfg.activation_func == "linear"
    assert cfg.weight_initialization == "Normal"
    assert cfg.sizes == (768, 320, 640, 1280)
    assert cfg.dropout_structure == (0.0, 0.0, 0.0)
    assert cfg.activate_output is False
    assert cfg.is_layer_norm is False


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("name", "   "),
        ("name", 5),
        ("layer_structure", [1]),
        ("layer_structure", [2, 2, 1]),
        ("layer_structure", [1, 2, 3]),
        ("layer_structure", [1, 0, 1]),
        ("layer_structure", [1, -2, 1]),
        ("layer_structure", [1, float("nan"), 1]),
        ("layer_structure", "1, 2, 1"),
        ("layer_structure", [1, True, 1]),
        ("activation_func", "threshold"),
        ("activation_func", "multiheadattention"),
        ("activation_func", "nope"),
        ("is_layer_norm", "yes"),
        ("use_dropout", 1),
        ("activate_output", None),
        ("weight_initialization", "Uniform"),
        ("sizes", []),
        ("sizes", [768, 768]),
        ("sizes", [0]),
        ("sizes", [-320]),
        ("sizes", [768.5]),
        ("sizes", [True]),
        ("optional_info", 3),
        ("seed", -1),
        ("seed", 2**64),
        ("seed", 1.5),
    ],
)
def test_bad_values_raise_naming_field_and_value(field, value):
    kwargs = {"name": "n", field: value}
    with pytest.raises(ValueError) as err:
        HypernetworkConfig(**kwargs)
    msg = str(err.value)
    assert field in msg
    shown = repr(value) if not isinstance(value, list) else None
    if shown is not None and field != "name":
        assert shown in msg or str(value) in msg


@pytest.mark.parametrize(
    "structure",
    [[0.1, 0.1, 0], [0, 0.1, 0.2], [0, 1.0, 0], [0, -0.1, 0], [0, 0.1], [0, 0.1, 0, 0]],
)
def test_bad_dropout_structure(structure):
    with pytest.raises(ValueError, match="dropout_structure"):
        HypernetworkConfig(name="n", use_dropout=True, dropout_structure=structure)


def test_dropout_message_gives_allowed_range():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        HypernetworkConfig(name="n", use_dropout=True, dropout_structure=[0, 1.5, 0])


def test_nonzero_dropout_requires_use_dropout():
    with pytest.raises(ValueError, match="use_dropout"):
        HypernetworkConfig(name="n", use_dropout=False, dropout_structure=[0, 0.1, 0])


def test_last_layer_dropout_follows_structure():
    cfg = HypernetworkConfig(name="n", layer_structure=[1, 2, 2, 1], use_dropout=True,
                             dropout_structure=[0, 0.1, 0.2, 0])
    assert cfg.last_layer_dropout is True
    cfg = HypernetworkConfig(name="n", layer_structure=[1, 2, 2, 1], use_dropout=True,
                             dropout_structure=[0, 0.1, 0, 0])
    assert cfg.last_layer_dropout is False
    with pytest.raises(ValueError, match="last_layer_dropout"):
        HypernetworkConfig(name="n", layer_structure=[1, 2, 2, 1], use_dropout=True,
                           dropout_structure=[0, 0.1, 0, 0], last_layer_dropout=True)


def test_layer_width_must_be_at_least_one_unit():
    with pytest.raises(ValueError, match="layer_structure"):
        HypernetworkConfig(name="n", layer_structure=[1, 0.1, 1], sizes=[4])
    HypernetworkConfig(name="n", layer_structure=[1, 0.25, 1], sizes=[4])


@pytest.mark.parametrize(
    "layers, use, last, expected",
    [
        ([1, 2, 1], False, False, [0, 0, 0]),
        ([1, 2, 1], True, False, [0, 0, 0]),  # A1111: no dropout at all
        ([1, 2, 1], True, True, [0, 0.3, 0]),
        ([1, 2, 2, 1], True, False, [0, 0.3, 0, 0]),
        ([1, 2, 2, 1], True, True, [0, 0.3, 0.3, 0]),
        ([1, 2, 4, 2, 1], True, False, [0, 0.3, 0.3, 0, 0]),
        ([1, 1], True, True, [0, 0]),
    ],
)
def test_derived_dropout_structure_matches_spec(layers, use, last, expected):
    assert derive_dropout_structure(layers, use, last) == pytest.approx(expected)
    cfg = HypernetworkConfig(name="n", layer_structure=layers, use_dropout=use,
                             last_layer_dropout=last, sizes=[8])
    assert list(cfg.dropout_structure) == pytest.approx(expected)


def test_names_are_normalised():
    cfg = HypernetworkConfig(name=" x ", activation_func="LeakyReLU", weight_initialization="kaimingnormal")
    assert cfg.name == "x"
    assert cfg.activation_func == "leakyrelu"
    assert cfg.weight_initialization == "KaimingNormal"
    assert HypernetworkConfig(name="x", activation_func=None).activation_func == "linear"
    assert HypernetworkConfig(name="x", optional_info="").optional_info is None


def test_to_dict_from_dict_round_trip_through_json():
    cfg = HypernetworkConfig(
        name="n", layer_structure=[1, 1.5, 2, 1], activation_func="mish", is_layer_norm=True,
        weight_initialization="XavierUniform", use_dropout=True, dropout_structure=[0, 0.05, 0.15, 0],
        activate_output=True, sizes=[1024, 320], optional_info="info", seed=42,
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert isinstance(data["layer_structure"], list)
    assert HypernetworkConfig.from_dict(data) == cfg


def test_from_dict_rejects_unknown_and_missing():
    with pytest.raises(ValueError, match="layer_structur"):
        HypernetworkConfig.from_dict({"name": "n", "layer_structur": [1, 2, 1]})
    with pytest.raises(ValueError, match="name"):
        HypernetworkConfig.from_dict({"sizes": [768]})


def test_hidden_widths_truncate_like_a1111():
    cfg = HypernetworkConfig(name="n", layer_structure=[1, 1.5, 0.33, 1], sizes=[320])
    assert cfg.hidden_widths(320) == [320, 480, int(320 * 0.33), 320]


@pytest.mark.parametrize(
    "text, expected",
    [("1, 2, 1", [1.0, 2.0, 1.0]), ("0, 0.05, 0.15", [0.0, 0.05, 0.15]), ("1,1.5,1,", [1.0, 1.5, 1.0]),
     ("[1, 2, 1]", [1.0, 2.0, 1.0]), (" 1e-1 ,1", [0.1, 1.0])],
)
def test_parse_float_list(text, expected):
    assert parse_float_list(text, "layer_structure") == pytest.approx(expected)


def test_parse_int_list():
    assert parse_int_list("768, 320, 640, 1280", "sizes") == [768, 320, 640, 1280]
    assert parse_int_list("768.0", "sizes") == [768]
    assert all(type(v) is int for v in parse_int_list("768, 320", "sizes"))


@pytest.mark.parametrize("text", ["", "  ", "1, x, 1", "1,,1", "nan", "1, inf", ","])
def test_parse_float_list_errors_name_field(text):
    with pytest.raises(ValueError, match="dropout_structure"):
        parse_float_list(text, "dropout_structure")


def test_parse_int_list_rejects_fraction():
    with pytest.raises(ValueError, match=r"sizes.*'768\.5'"):
        parse_int_list("768.5, 320", "sizes")
