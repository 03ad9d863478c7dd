"""Activation table for hypernetwork layers, keyed by the names A1111 writes into `.pt` files.

A1111 maps `activation_func` strings to torch classes: a few base names (`linear` = none,
`swish` = Hardswish, sic) plus every class of `torch.nn.modules.activation` under its lower-cased
name. Stock ComfyUI reads only nine of them. The table below is written out by hand (not found by
introspection) so the set of names does not change with the installed torch version.
"""
from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

#: Name that means "no activation" (A1111 also treats a missing/None value this way).
NO_ACTIVATION = "linear"

# name -> torch.nn class name. Left out on purpose: `threshold` and `multiheadattention` (cannot be
# built without arguments, A1111 would crash) and `glu` (halves the feature width, so the next
# Linear gets the wrong input size; A1111 accepts the name but the network cannot run).
_CLASS_NAMES: dict[str, str] = {
    "linear": "Identity",
    "relu": "ReLU",
    "leakyrelu": "LeakyReLU",
    "elu": "ELU",
    "swish": "Hardswish",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "softsign": "Softsign",
    "mish": "Mish",
    "celu": "CELU",
    "gelu": "GELU",
    "hardshrink": "Hardshrink",
    "hardsigmoid": "Hardsigmoid",
    "hardswish": "Hardswish",
    "hardtanh": "Hardtanh",
    "logsigmoid": "LogSigmoid",
    "logsoftmax": "LogSoftmax",
    "prelu": "PReLU",
    "relu6": "ReLU6",
    "rrelu": "RReLU",
    "selu": "SELU",
    "silu": "SiLU",
    "softmax": "Softmax",
    "softmax2d": "Softmax2d",
    "softmin": "Softmin",
    "softplus": "Softplus",
    "softshrink": "Softshrink",
    "tanhshrink": "Tanhshrink",
}

#: The names stock ComfyUI's `HypernetworkLoader` accepts (it refuses the file otherwise).
STOCK_COMFY_ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "leakyrelu", "elu", "swish", "tanh", "sigmoid", "softsign", "mish",
)

#: name -> torch class, limited to the classes the installed torch provides.
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    name: getattr(torch.nn, cls_name)
    for name, cls_name in _CLASS_NAMES.items()
    if hasattr(torch.nn, cls_name)
}


def activation_names() -> list[str]:
    """All accepted names: the nine stock-ComfyUI ones first (in stock order), then the rest A-Z."""
    rest = sorted(n for n in ACTIVATIONS if n not in STOCK_COMFY_ACTIVATIONS)
    return [n for n in STOCK_COMFY_ACTIVATIONS if n in ACTIVATIONS] + rest


#: Names accepted when loading but not offered for new networks: `hardswish` duplicates `swish`
#: (A1111's create UI hides it too); the softmax family normalises over an implicitly chosen
#: dimension, which for the (batch, tokens, width) attention context is the batch, so results
#: would depend on what else is in the batch.
NOT_FOR_CREATION: frozenset[str] = frozenset({"hardswish", "softmax", "softmin", "logsoftmax", "softmax2d"})


def creatable_activation_names() -> list[str]:
    """`activation_names()` minus NOT_FOR_CREATION: the choices to offer when creating a network."""
    return [n for n in activation_names() if n not in NOT_FOR_CREATION]


def normalize_activation_name(name: str | None) -> str:
    """Return the canonical (lower-case) table name; None means no activation (`linear`).

    Raises ValueError naming the value and the accepted names when it is unknown.
    """
    if name is None:
        return NO_ACTIVATION
    if not isinstance(name, str):
        raise ValueError(
            f"activation_func must be a string, got {name!r} ({type(name).__name__}); "
            f"use one of: {', '.join(activation_names())}"
        )
    key = name.strip().lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation_func {name!r} is not supported; use one of: {', '.join(activation_names())}"
        )
    return key


def is_stock_comfy_activation(name: str | None) -> bool:
    """True when stock ComfyUI's HypernetworkLoader can read a file with this activation_func.

    The stock loader treats a *missing* key as `linear` but refuses an explicit None, so None
    counts as unreadable here (this pack always writes `linear` instead of None).
    """
    return name in STOCK_COMFY_ACTIVATIONS


def make_activation(name: str | None) -> torch.nn.Module | None:
    """Build the activation layer for `name`, or None for `linear` (nothing is inserted)."""
    key = normalize_activation_name(name)
    if key == NO_ACTIVATION:
        return None
    return ACTIVATIONS[key]()


def warn_if_not_stock(name: str, context: str = "") -> bool:
    """Log a warning when stock ComfyUI cannot read `name`; return True if it warned."""
    if is_stock_comfy_activation(name):
        return False
    where = f" for {context}" if context else ""
    logger.warning(
        "activation_func %r%s: the file will only work with this pack and A1111; stock ComfyUI's "
        "HypernetworkLoader reads only %s.",
        name, where, ", ".join(STOCK_COMFY_ACTIVATIONS),
    )
    return True
