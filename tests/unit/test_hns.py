"""MonkeyPatch `.hns` compositions: parsing every kind, name resolution, the errors, and the K/V
math against a reference computed directly from the member networks (the extension's semantics)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from hypernet.network.composition import Composition, bind
from hypernet.network.config import HypernetworkConfig
from hypernet.network.hns import (
    MAX_DEPTH, CompositionError, MemberSpec, ParallelSpec, SequenceSpec, legacy_model_hash, parse_composition,
    read_composition, resolve_member,
)
from hypernet.network.module import Hypernetwork
from hypernet.network.patch import HypernetworkPatch
from tests.support.networks import loud_weights


def _net(name: str, seed: int, sizes=(8, 16)) -> Hypernetwork:
    config = HypernetworkConfig(name=name, sizes=list(sizes), layer_structure=[1, 2, 1], activation_func="tanh",
                                weight_initialization="Normal", seed=seed)
    return loud_weights(Hypernetwork.create(config), seed)


NETS = {"A": _net("A", 1), "B": _net("B", 2), "C": _net("C", 3), "D": _net("D", 4, sizes=(16,))}


def member(name: str, strength: float, k: torch.Tensor, v: torch.Tensor):
    """The extension's SingularForward: x + strength * linear(x), K and V modules separately."""
    pair = NETS[name].pair(k.shape[-1])
    if pair is None:
        return k, v
    return k + strength * pair[0].linear(k), v + strength * pair[1].linear(v)


def composed(text: str) -> Composition:
    spec = parse_composition(text, "test.hns")
    return Composition("test.hns", bind(spec, lambda name: (f"{name}.pt", NETS[name.split("(")[0]])))


@pytest.fixture
def kv():
    gen = torch.Generator().manual_seed(7)
    return torch.randn(2, 5, 8, generator=gen), torch.randn(2, 5, 8, generator=gen)


def run(text: str, k, v, strength: float = 1.0):
    _, k2, v2 = HypernetworkPatch([(composed(text), strength)])(torch.zeros(1), k, v, {})
    return k2, v2


def close(got, want):
    assert torch.allclose(got[0], want[0], atol=1e-5) and torch.allclose(got[1], want[1], atol=1e-5)
    assert not torch.allclose(got[0], got[1])  # K and V went through their own modules


# ------------------------------------------------------------------ every kind, against the reference
def test_sequence_chains_k_and_v_separately(kv):
    k, v = kv
    ref = member("B", 1.0, *member("A", 1.0, k, v))
    close(run('["A", "B"]', k, v), ref)
    # order matters: B then A is a different result
    assert not torch.allclose(run('["B", "A"]', k, v)[0], ref[0])


def test_weighted_parallel_blends_with_normalised_weights(kv):
    k, v = kv
    a, b = member("A", 1.0, k, v), member("B", 1.0, k, v)
    ref = (a[0] * 0.8 / 0.9 + b[0] * 0.1 / 0.9, a[1] * 0.8 / 0.9 + b[1] * 0.1 / 0.9)
    close(run('{"A": 0.8, "B": 0.1}', k, v), ref)


def test_set_gives_equal_weights(kv):
    k, v = kv
    outs = [member(n, 1.0, k, v) for n in "ABC"]
    ref = (sum(o[0] for o in outs) / 3, sum(o[1] for o in outs) / 3)
    close(run('{"A", "B", "C"}', k, v), ref)


@pytest.mark.parametrize("text", ['("A", 0.5)', '{"A": 0.5}', '[("A", 0.5)]'])
def test_strength_tuple_and_single_dict(kv, text):
    k, v = kv
    close(run(text, k, v), member("A", 0.5, k, v))


def test_nested_quoted_group_in_a_parallel(kv):
    k, v = kv
    inner = member("B", 1.0, *member("A", 1.0, k, v))
    c = member("C", 0.5, k, v)
    ref = (inner[0] * 0.75 + c[0] * 0.25, inner[1] * 0.75 + c[1] * 0.25)
    close(run('{"[\'A\', \'B\']": 3, ("C", 0.5): 1}', k, v), ref)


def test_nested_unquoted_groups_in_a_sequence_and_singletons_unwrapped(kv):
    k, v = kv
    a = member("A", 1.0, k, v)
    par = member("B", 1.0, *a), member("C", 1.0, *a)
    ref = ((par[0][0] + par[1][0]) / 2, (par[0][1] + par[1][1]) / 2)
    close(run('[["A"], {"B", "C"}]', k, v), ref)
    close(run('[{"[\'A\']": 1}]', k, v), a)


def test_hash_suffix_names_the_member(kv):
    k, v = kv
    close(run('["A(1a2b3c4d)", "B"]', k, v), member("B", 1.0, *member("A", 1.0, k, v)))


def test_member_without_the_width_passes_through_and_still_weighs(kv):
    k, v = kv  # D has no width-8 modules: its branch contributes the input unchanged
    a = member("A", 1.0, k, v)
    close(run('{"A": 1, "D": 1}', k, v), ((a[0] + k) / 2, (a[1] + v) / 2))


def test_apply_strength_scales_the_whole_change(kv):
    k, v = kv
    full = member("B", 1.0, *member("A", 1.0, k, v))
    got = run('["A", "B"]', k, v, strength=0.5)
    close(got, (k + 0.5 * (full[0] - k), v + 0.5 * (full[1] - v)))


def test_bare_and_quoted_single_names():
    assert parse_composition("A\n", "x.hns") == MemberSpec("A")
    assert parse_composition('"A"', "x.hns") == MemberSpec("A")
    spec = parse_composition('{"A": 0.8, "B": 0.2}', "x.hns")
    assert isinstance(spec, ParallelSpec) and spec.weights == pytest.approx((0.8, 0.2))
    assert isinstance(parse_composition('["A", "B"]', "x.hns"), SequenceSpec)


# ------------------------------------------------------------------ errors name the file and member
@pytest.mark.parametrize("text, words", [
    ('("A", 1.5)', ["x.hns", "'A'", "strength 1.5", "0 to 1"]),
    ('{"A": -0.5}', ["x.hns", "'A'", "out of range"]),
    ('{"A": 0.5, "B": -1}', ["x.hns", "'B'", "weight -1", "out of range"]),
    ('{"A": 0, "B": 0}', ["x.hns", "sum to 0"]),
    ('("A", True)', ["x.hns", "'A'", "strength True"]),
    ('{"A": 0.5, "B": "0.5"}', ["x.hns", "'B'", "weight '0.5'"]),
    ('{"A": float("nan")}', ["x.hns", "not a valid composition literal"]),
    ('__import__("os").system("true")', ["x.hns", "not a valid network name"]),
    ('A, B', ["x.hns", "not a valid network name"]),
    ("[]", ["x.hns", "empty"]),
    ("", ["x.hns", "empty"]),
    ('("A", "B", "C")', ["x.hns", "tuple must be"]),
    ('{"[\'A\', \'B\']": 0.5}', ["x.hns", "strength applies to one network name"]),
    ("[" * (MAX_DEPTH + 2) + '"A"' + "]" * (MAX_DEPTH + 2), ["x.hns", "nested"]),
    ("[" + ", ".join(['"A"'] * 70) + "]", ["x.hns", "more than 64 members"]),
    ('"' + "[" * 100 + '"', ["x.hns"]),
])
def test_parse_errors(text, words):
    with pytest.raises(CompositionError) as info:
        parse_composition(text, "x.hns")
    for word in words:
        assert word in str(info.value)


def test_oversized_or_binary_file_is_refused(tmp_path):
    big = tmp_path / "big.hns"
    big.write_text('["A"' + ', "A"' * 20000 + "]")
    with pytest.raises(CompositionError, match="big.hns.*bytes"):
        read_composition(big)
    binary = tmp_path / "bin.hns"
    binary.write_bytes(b"\xff\xfe\x00[")
    with pytest.raises(CompositionError, match="bin.hns: not UTF-8"):
        read_composition(binary)


def test_member_widths_that_do_not_fit_the_model_name_the_member():
    composition = composed('["A", "D"]')
    composition.require_fit([16, 32])  # A (8, 16) and D (16) both fit
    with pytest.raises(CompositionError, match=r"test.hns: member 'D' \(D.pt\).*\[16\].*\[8, 32\]"):
        composition.require_fit([8, 32])


# ------------------------------------------------------------------ resolving member names
@pytest.fixture
def folder(tmp_path):
    files = {"A.pt": b"a" * 10, "sub/B.safetensors": b"b" * 10, "big.pt": bytes(range(256)) * 5000,
             "twin.pt": b"t0", "x/dup.pt": b"t1", "y/dup.pt": b"t2", "comp.hns": b'["A"]'}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path, sorted(files)


def _resolve(folder, name):
    root, available = folder
    return resolve_member(name, available, lambda rel: root / rel, "x.hns")


def test_names_resolve_by_relative_name_stem_and_extension(folder):
    assert _resolve(folder, "A") == "A.pt"
    assert _resolve(folder, "A.pt") == "A.pt"
    assert _resolve(folder, "B") == "sub/B.safetensors"
    assert _resolve(folder, "sub/B") == "sub/B.safetensors"
    assert _resolve(folder, "y/dup") == "y/dup.pt"
    assert _resolve(folder, "twin") == "twin.pt"


def test_hash_suffix_matches_the_sha256_or_the_legacy_hash(folder):
    root, _ = folder
    sha = hashlib.sha256((root / "A.pt").read_bytes()).hexdigest()
    assert _resolve(folder, f"A({sha[:10]})") == "A.pt"
    legacy = legacy_model_hash(root / "big.pt")
    assert legacy == hashlib.sha256((root / "big.pt").read_bytes()[0x100000:0x110000]).hexdigest()[:8]
    assert _resolve(folder, f"big({legacy})") == "big.pt"
    dup = hashlib.sha256(b"t2").hexdigest()[:8]
    assert _resolve(folder, f"dup({dup})") == "y/dup.pt"  # the hash picks one of two
    with pytest.raises(CompositionError, match=r"x.hns: member 'A\(00000000\)'.*different hash"):
        _resolve(folder, "A(00000000)")


def test_missing_and_ambiguous_members_are_named(folder):
    with pytest.raises(CompositionError, match=r"x.hns: member 'nope' is missing"):
        _resolve(folder, "nope")
    with pytest.raises(CompositionError, match=r"x.hns: member 'dup' is ambiguous.*x/dup.pt, y/dup.pt"):
        _resolve(folder, "dup")
    with pytest.raises(CompositionError, match="missing"):
        _resolve(folder, "../A")  # a name is matched against the listing only, never a path
