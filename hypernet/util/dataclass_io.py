"""Strict dict -> dataclass loading shared by the settings classes (unknown keys are an error)."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def strict_from_dict(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """`cls(**data)`, refusing keys the dataclass does not have with a message naming them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; expected some of {sorted(known)}")
    return cls(**dict(data))
