"""HypernetworkConfig: the creation-time description of an A1111-style hypernetwork.

Field names match the metadata keys A1111 writes into `.pt` files (`layer_structure`,
`activation_func`, `is_layer_norm`, ...), plus `sizes` (which attention widths get a K/V module
pair) and `seed` (weight-init seed, this pack only).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .activations import normalize_activation_name

WEIGHT_INITIALIZATIONS: tuple[str, ...] = (
    "Normal", "XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal",
)
#: A1111's create-UI defaults for SD1.x (its "Modules" checkbox group).
DEFAULT_SIZES: tuple[int, ...] = (768, 320, 640, 1280)
DEFAULT_LAYER_STRUCTURE: tuple[float, ...] = (1.0, 2.0, 1.0)
#: Dropout probability of A1111's legacy derivation for files without `dropout_structure`.
LEGACY_DROPOUT_P = 0.3
MAX_SEED = 2**64 - 1
# Bounds that keep a hostile file from asking for absurd layers (real networks: widths <= 4096, multipliers <= 8).
MAX_WIDTH = 65536
MAX_LAYER_MULTIPLIER = 1000


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(values: Iterable[Any]) -> str:
    return "[" + ", ".join(f"{v:g}" if _is_number(v) else repr(v) for v in values) + "]"


def parse_number_list(text: str, field_name: str, kind: type = float) -> list:
    """Parse a comma string a user typed ("1, 2, 1", "768, 320, 640") into numbers.

    Surrounding brackets and one trailing comma are tolerated. `kind` is float or int; for int,
    integral floats like "768.0" are accepted. Raises ValueError naming `field_name`.
    """
    if kind not in (float, int):
        raise ValueError(f"parse_number_list: kind must be float or int, got {kind!r}")
    if not isinstance(text, str):
        raise ValueError(f"{field_name}: expected comma-separated numbers as text, got {text!r}")
    body = text.strip()
    if len(body) >= 2 and body[0] + body[-1] in ("[]", "()"):
        body = body[1:-1].strip()
    if body.endswith(","):
        body = body[:-1]
    example = "1, 2, 1" if kind is float else "768, 320, 640, 1280"
    if not body.strip():
        raise ValueError(f"{field_name}: no numbers given in {text!r}; enter e.g. '{example}'")
    out = []
    for pos, item in enumerate(body.split(","), start=1):
        item = item.strip()
        try:
            number = float(item)
        except ValueError:
            raise ValueError(
                f"{field_name}: item {pos} {item!r} in {text!r} is not a number; "
                f"enter comma-separated numbers, e.g. '{example}'"
            ) from None
        if not math.isfinite(number):
            raise ValueError(f"{field_name}: item {pos} {item!r} in {text!r} must be a finite number")
        if kind is int:
            if number != int(number):
                raise ValueError(
                    f"{field_name}: item {pos} {item!r} in {text!r} must be a whole number, e.g. '{example}'"
                )
            number = int(number)
        out.append(number)
    return out


def parse_float_list(text: str, field_name: str) -> list[float]:
    """`parse_number_list(text, field_name, float)`."""
    return parse_number_list(text, field_name, float)


def parse_int_list(text: str, field_name: str) -> list[int]:
    """`parse_number_list(text, field_name, int)`."""
    return parse_number_list(text, field_name, int)


def derive_dropout_structure(
    layer_structure: Sequence[float], use_dropout: bool, last_layer_dropout: bool
) -> list[float]:
    """A1111's rule for files that carry no `dropout_structure`.

    No dropout -> zeros; otherwise 0 first, 0.3 for every hidden position except the one before
    the output (0.3 only with `last_layer_dropout`), 0 last. For a 2-entry structure (no hidden
    layer) A1111's formula would give the wrong length; there is nothing to drop, so zeros.
    """
    n = len(layer_structure)
    if not use_dropout or n < 3:
        return [0.0] * n
    return [0.0] + [LEGACY_DROPOUT_P] * (n - 3) + [LEGACY_DROPOUT_P if last_layer_dropout else 0.0] + [0.0]


@dataclass(frozen=True)
class HypernetworkConfig:
    """Everything needed to build a new hypernetwork; validated on creation.

    `dropout_structure=None` derives it from `use_dropout`/`last_layer_dropout` as A1111 does for
    old files; when given explicitly, `last_layer_dropout` must agree with it (it is always
    normalised to `dropout_structure[-2] != 0`, the value A1111 saves).
    """

    name: str
    layer_structure: Sequence[float] = DEFAULT_LAYER_STRUCTURE
    activation_func: str = "linear"
    is_layer_norm: bool = False
    weight_initialization: str = "Normal"
    use_dropout: bool = False
    dropout_structure: Sequence[float] | None = None
    activate_output: bool = False
    last_layer_dropout: bool = False
    sizes: Sequence[int] = DEFAULT_SIZES
    optional_info: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)

        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: {self.name!r} is invalid; give a non-empty name, e.g. 'my_style'")
        set_("name", self.name.strip())

        for flag in ("is_layer_norm", "use_dropout", "activate_output", "last_layer_dropout"):
            value = getattr(self, flag)
            if not isinstance(value, bool):
                raise ValueError(f"{flag}: {value!r} is invalid; must be True or False")

        set_("layer_structure", self._check_layer_structure(self.layer_structure))
        set_("sizes", self._check_sizes(self.sizes))
        for size in self.sizes:
            for mult in self.layer_structure:
                if int(size * mult) < 1:
                    raise ValueError(
                        f"layer_structure: multiplier {mult:g} gives a layer of width "
                        f"int({size}*{mult:g}) = {int(size * mult)} for size {size}; "
                        f"every multiplier must give at least 1 unit"
                    )

        try:
            set_("activation_func", normalize_activation_name(self.activation_func))
        except ValueError as exc:
            raise ValueError(f"activation_func: {exc}") from None

        set_("weight_initialization", self._check_weight_init(self.weight_initialization))

        if self.dropout_structure is None:
            dropout = tuple(derive_dropout_structure(self.layer_structure, self.use_dropout, self.last_layer_dropout))
        else:
            dropout = self._check_dropout_structure(self.dropout_structure, self.layer_structure)
            if any(dropout) and not self.use_dropout:
                raise ValueError(
                    f"dropout_structure: {_fmt(dropout)} has non-zero entries but use_dropout is False; "
                    f"set use_dropout=True or use all zeros"
                )
            derived_last = len(dropout) >= 2 and dropout[-2] != 0
            if self.last_layer_dropout and not derived_last:
                raise ValueError(
                    f"last_layer_dropout: True contradicts dropout_structure {_fmt(dropout)} "
                    f"(its second-to-last entry is 0); set the entry or use last_layer_dropout=False"
                )
        set_("dropout_structure", dropout)
        set_("last_layer_dropout", len(dropout) >= 2 and dropout[-2] != 0)

        if self.optional_info is not None and not isinstance(self.optional_info, str):
            raise ValueError(f"optional_info: {self.optional_info!r} is invalid; must be text or None")
        set_("optional_info", self.optional_info or None)

        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed: {self.seed!r} is invalid; must be a whole number in 0..{MAX_SEED}")

    @staticmethod
    def _check_layer_structure(value: Any) -> tuple[float, ...]:
        hint = "e.g. '1, 2, 1' or '1, 1.5, 1'"
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError(f"layer_structure: {value!r} is invalid; give a list of numbers, {hint}")
        if len(value) < 2:
            raise ValueError(f"layer_structure: {_fmt(value)} is invalid; needs at least 2 entries, {hint}")
        for v in value:
            if not _is_number(v) or not math.isfinite(v) or v <= 0 or v > MAX_LAYER_MULTIPLIER:
                raise ValueError(
                    f"layer_structure: {_fmt(value)} is invalid; entry {v!r} must be a number > 0 and "
                    f"<= {MAX_LAYER_MULTIPLIER}, {hint}"
                )
        if value[0] != 1 or value[-1] != 1:
            raise ValueError(
                f"layer_structure: {_fmt(value)} is invalid; must start and end with 1, {hint}"
            )
        return tuple(float(v) for v in value)

    @staticmethod
    def _check_sizes(value: Any) -> tuple[int, ...]:
        hint = "e.g. 768, 320, 640, 1280 for SD1.x or 1024, 320, 640, 1280 for SD2.x"
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
            raise ValueError(f"sizes: {value!r} is invalid; give at least one attention width, {hint}")
        for v in value:
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_WIDTH:
                raise ValueError(f"sizes: {_fmt(value)} is invalid; entry {v!r} must be a whole number in "
                                 f"1..{MAX_WIDTH}, {hint}")
        if len(set(value)) != len(value):
            dup = sorted({v for v in value if list(value).count(v) > 1})
            raise ValueError(f"sizes: {_fmt(value)} is invalid; {dup} listed more than once, {hint}")
        return tuple(int(v) for v in value)

    @staticmethod
    def _check_weight_init(value: Any) -> str:
        if isinstance(value, str):
            for name in WEIGHT_INITIALIZATIONS:
                if name.lower() == value.strip().lower():
                    return name
        raise ValueError(
            f"weight_initialization: {value!r} is invalid; use one of {', '.join(WEIGHT_INITIALIZATIONS)}"
        )

    @staticmethod
    def _check_dropout_structure(value: Any, layers: tuple[float, ...]) -> tuple[float, ...]:
        hint = "e.g. '0, 0.05, 0' for layer_structure '1, 2, 1'"
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError(f"dropout_structure: {value!r} is invalid; give a list of numbers, {hint}")
        if len(value) != len(layers):
            raise ValueError(
                f"dropout_structure: {_fmt(value)} has {len(value)} entries but layer_structure "
                f"{_fmt(layers)} has {len(layers)}; they must have the same length, {hint}"
            )
        for v in value:
            if not _is_number(v) or not math.isfinite(v) or not 0 <= v < 1:
                raise ValueError(
                    f"dropout_structure: {_fmt(value)} is invalid; entry {v!r} must be in [0, 1), {hint}"
                )
        if value[0] != 0 or value[-1] != 0:
            raise ValueError(
                f"dropout_structure: {_fmt(value)} is invalid; the first and last entries must be 0, {hint}"
            )
        return tuple(float(v) for v in value)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (lists, not tuples) that `from_dict` turns back into an equal config."""
        out = dataclasses.asdict(self)
        for key in ("layer_structure", "dropout_structure", "sizes"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HypernetworkConfig":
        """Build from a `to_dict()`-style dict; unknown keys raise ValueError (likely typos)."""
        if not isinstance(data, dict):
            raise ValueError(f"HypernetworkConfig.from_dict: expected a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise ValueError(
                f"HypernetworkConfig: unknown field(s) {unknown}; valid fields are {sorted(names)}"
            )
        if "name" not in data:
            raise ValueError("HypernetworkConfig: field 'name' is missing")
        return cls(**data)

    def hidden_widths(self, size: int) -> list[int]:
        """Layer widths for one attention width, A1111's `int(size * multiplier)`."""
        return [int(size * m) for m in self.layer_structure]
