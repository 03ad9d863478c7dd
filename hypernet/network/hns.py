"""MonkeyPatch `.hns` composition files: parsing and member-name resolution (pure, no torch).

A `.hns` file holds one Python literal, read with `ast.literal_eval` only (nothing is evaluated):
- `"A"`, `("A", 0.6)`, `{"A": 0.6}`: one network at a strength in [0, 1];
- a list `["A", "B"]`: a sequence, each member gets the previous member's K and V outputs;
- a dict of two or more `{"A": 0.8, "B": 0.2}`: members side by side on the same input, their
  outputs blended with the weights normalised to sum to 1; a set `{"A", "B"}`: equal weights;
- a string starting with `[`, `(` or `{` is a nested group (dict keys and set items must be quoted
  this way, as in the extension); a one-item list/tuple/set, or `{group: 1}`, is that item.
Names are file names without extension and may end in `(hash)`: the 8-digit legacy A1111 hash or
a prefix (8+ digits) of the file's sha256. A `.hns` cannot name another `.hns`.
"""
from __future__ import annotations

import ast
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 12  # nested groups (quoted or not)
MAX_MEMBERS = 64
_OPENERS = ("[", "(", "{")
_HASH_SUFFIX = re.compile(r"^(?P<base>.+?)\s*\((?P<hash>[0-9a-fA-F]{8,64})\)$")
_NOT_IN_NAMES = set("\"'[]{},\n\r\t\\")
NETWORK_EXTENSIONS = (".pt", ".safetensors")
COMPOSITION_EXTENSION = ".hns"


class CompositionError(ValueError):
    """A `.hns` problem; the message names the file and, where there is one, the member."""


@dataclass(frozen=True)
class MemberSpec:
    """One network named in the file, with its strength (1.0 unless given)."""

    name: str  # as written, e.g. "style(1a2b3c4d)"
    strength: float = 1.0


@dataclass(frozen=True)
class SequenceSpec:
    items: tuple["Spec", ...]


@dataclass(frozen=True)
class ParallelSpec:
    items: tuple["Spec", ...]
    weights: tuple[float, ...]  # normalised: they sum to 1


Spec = Union[MemberSpec, SequenceSpec, ParallelSpec]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.members = 0

    def fail(self, message: str) -> CompositionError:
        return CompositionError(f"{self.source}: {message}")

    def literal(self, text: str) -> Any:
        if len(text) > MAX_FILE_BYTES:
            raise self.fail(f"a group of {len(text)} characters is too long (at most {MAX_FILE_BYTES})")
        depth = deepest = 0
        for char in text:  # refuse deep nesting before the parser recurses into it
            depth += char in "([{"
            depth -= char in ")]}"
            deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise self.fail(f"groups are nested {deepest} deep (at most {MAX_DEPTH})")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
            raise self.fail(f"{text[:80]!r} is not a valid composition literal ({type(exc).__name__}: {exc}); "
                            f"write e.g. [\"A\", \"B\"] or {{\"A\": 0.8, \"B\": 0.2}}") from None
        if not value and value != 0:
            raise self.fail(f"{text[:80]!r} is empty; a group needs at least one network")
        return value

    @staticmethod
    def unwrap(value: Any) -> Any:
        while True:
            if isinstance(value, (list, tuple, set, frozenset)) and len(value) == 1:
                value = next(iter(value))
            elif isinstance(value, dict) and len(value) == 1 and _is_number(next(iter(value.values()))) \
                    and next(iter(value.values())) == 1:
                value = next(iter(value))
            else:
                return value

    def member(self, name: str, strength: Any) -> MemberSpec:
        name = name.strip()
        if not name:
            raise self.fail("a member name is empty")
        if name.startswith(_OPENERS):
            raise self.fail(f"{name[:80]!r}: a strength applies to one network name, not to a group; "
                            f"weight the group inside a parallel dict instead")
        if set(name) & _NOT_IN_NAMES:
            raise self.fail(f"{name[:80]!r} is not a valid network name (no quotes, brackets, commas or "
                            f"line breaks); quote each name, e.g. [\"A\", \"B\"]")
        if not _is_number(strength) or not 0.0 <= strength <= 1.0:
            raise self.fail(f"member {name!r}: strength {strength!r} is out of range; it must be a number "
                            f"from 0 to 1")
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise self.fail(f"more than {MAX_MEMBERS} members; split the composition")
        return MemberSpec(name, float(strength))

    def node(self, value: Any, depth: int) -> Spec:
        if depth > MAX_DEPTH:
            raise self.fail(f"groups are nested more than {MAX_DEPTH} deep")
        value = self.unwrap(value)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(_OPENERS):
                return self.node(self.literal(text), depth + 1)
            return self.member(text, 1.0)
        if isinstance(value, tuple):
            if len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], (str, tuple)):
                return self.member(value[0], value[1])
            raise self.fail(f"{value!r}: a tuple must be (\"name\", strength)")
        if isinstance(value, dict) and len(value) == 1:
            (key, strength), = value.items()
            if not isinstance(key, str):
                raise self.fail(f"{value!r}: a one-entry dict must be {{\"name\": strength}}")
            return self.member(key, strength)
        if isinstance(value, (dict, set, frozenset)):
            return self.parallel(value, depth)
        if isinstance(value, list):
            if not value:
                raise self.fail("an empty list; a sequence needs at least one network")
            return SequenceSpec(tuple(self.node(item, depth + 1) for item in value))
        raise self.fail(f"{value!r} ({type(value).__name__}) is not a network name, list, dict, set or "
                        f"(name, strength) tuple")

    def parallel(self, value: dict | set | frozenset, depth: int) -> ParallelSpec:
        raw = value if isinstance(value, dict) else {key: 1.0 for key in value}
        for key, weight in raw.items():
            if not isinstance(key, (str, tuple)):
                raise self.fail(f"parallel member {key!r}: keys must be names, (name, strength) tuples, or "
                                f"nested groups quoted as strings")
            if not _is_number(weight) or weight < 0:
                raise self.fail(f"member {key!r}: weight {weight!r} is out of range; parallel weights must "
                                f"be numbers >= 0 (they are normalised to sum to 1)")
        total = float(sum(raw.values()))
        if total <= 0:
            raise self.fail(f"parallel weights {list(raw.values())} sum to 0; give at least one a weight > 0")
        items = tuple(self.node(key, depth + 1) for key in raw)
        return ParallelSpec(items, tuple(float(w) / total for w in raw.values()))


def parse_composition(text: str, source: str = "composition") -> Spec:
    """Parse the text of a `.hns` file; raises CompositionError naming `source`."""
    if not isinstance(text, str):
        raise CompositionError(f"{source}: expected text, got {type(text).__name__}")
    parser = _Parser(source)
    stripped = text.strip()
    if not stripped:
        raise parser.fail("the file is empty; write a network name, a list or a dict of names")
    if len(stripped) > MAX_FILE_BYTES:
        raise parser.fail(f"the file has {len(stripped)} characters (at most {MAX_FILE_BYTES})")
    if stripped.startswith(("'", '"')):
        stripped = parser.literal(stripped)
        if not isinstance(stripped, str):
            raise parser.fail("a quoted value must be a network name or a group")
    return parser.node(stripped, 0)


def read_composition(path: str | Path, source: str | None = None) -> Spec:
    """Read and parse a `.hns` file (UTF-8, at most MAX_FILE_BYTES)."""
    path = Path(path)
    source = source or path.name
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CompositionError(f"{source}: the file is {size} bytes (at most {MAX_FILE_BYTES}); it is not a "
                               f"composition file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CompositionError(f"{source}: not UTF-8 text ({exc})") from None
    return parse_composition(text, source)


def member_names(spec: Spec) -> list[str]:
    """Every member name in the order written."""
    if isinstance(spec, MemberSpec):
        return [spec.name]
    return [name for item in spec.items for name in member_names(item)]


# ---------------------------------------------------------------------------- name resolution
def legacy_model_hash(path: str | Path) -> str:
    """A1111's old 8-digit `model_hash` (sha256 of 64 KiB at offset 1 MiB), which MonkeyPatch lists."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(0x100000)
        digest.update(fh.read(0x10000))
    return digest.hexdigest()[:8]


def full_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for ext in NETWORK_EXTENSIONS + (COMPOSITION_EXTENSION,):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def _without_extension(name: str) -> str:
    stem = _stem(name)
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    return folder + stem


def _candidates(name: str, available: Sequence[str]) -> list[str]:
    for match in (lambda f: f == name, lambda f: _without_extension(f) == name, lambda f: _stem(f) == name):
        found = [f for f in available if match(f)]
        if found:
            return found
    return []


def resolve_member(
    name: str,
    available: Sequence[str],
    resolve_path: Callable[[str], Path],
    source: str,
) -> str:
    """The listed file (relative name) that member `name` refers to.

    `available` lists the relative names of the hypernetwork folder (networks and `.hns` files);
    a name is matched against them only, never used as a path. Order: exact relative name, name
    without extension, file stem; then, if the name ends in `(hash)`, the same for the part before
    it, keeping the files whose legacy or sha256 hash starts with the hash.
    """
    found = _candidates(name, available)
    hash_text = None
    if not found:
        match = _HASH_SUFFIX.match(name)
        if match:
            hash_text = match.group("hash").lower()
            found = _candidates(match.group("base"), available)
    if not found:
        raise CompositionError(
            f"{source}: member {name!r} is missing: no hypernetwork file with that name is in the "
            f"hypernetworks folders; put it there or fix the name in {source}")
    if hash_text is not None:
        matching = []
        for candidate in found:
            path = resolve_path(candidate)
            if legacy_model_hash(path) == hash_text[:8] and len(hash_text) == 8 \
                    or full_sha256(path).startswith(hash_text):
                matching.append(candidate)
        if not matching:
            raise CompositionError(
                f"{source}: member {name!r}: {', '.join(found)} has a different hash than ({hash_text}); "
                f"the file changed since {source} was written. Drop the (hash) suffix or update it")
        found = matching
    networks = [f for f in found if not f.lower().endswith(COMPOSITION_EXTENSION)]
    if len(networks) > 1:
        raise CompositionError(
            f"{source}: member {name!r} is ambiguous: it matches {', '.join(networks)}; write the name "
            f"with its folder and extension")
    return networks[0] if networks else found[0]
