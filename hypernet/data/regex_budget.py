"""A user's regular expression run on tag names with a time budget.

Python's `re` backtracks: a pattern such as `(a+)+$` takes exponential time on a tag like
`aaaa...b`, and a thread running it cannot be stopped. So the dataset editor's regex bulk edits
do their matching in a short-lived child Python (stdlib `re` only, given the distinct tag names
on stdin) that is killed when it runs past `BUDGET_S`; the request then gets a clear error.
Refusing "dangerous" patterns up front was the alternative, but no syntactic rule catches every
slow pattern (`(a|aa)+$`, `\\w*\\w*\\w*x`) without refusing useful ones, while a time limit does.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterable

BUDGET_S = 5.0

_CHILD = r"""
import json, re, sys
data = json.loads(sys.stdin.buffer.read().decode("utf-8"))
pattern = re.compile(data["pattern"])
out = {}
for name in data["names"]:
    if pattern.fullmatch(name) is not None:
        out[name] = pattern.sub(data["new"], name)
sys.stdout.buffer.write(json.dumps(out).encode("utf-8"))
"""


class RegexTooSlow(ValueError):
    """The pattern ran past the time budget on these names."""


def full_matches(pattern: str, new: str, names: Iterable[str], budget_s: float = BUDGET_S) -> dict[str, str]:
    """{name: pattern.sub(new, name)} for every name that `pattern` matches as a whole.

    Raises RegexTooSlow when the work takes longer than `budget_s` seconds, ValueError when the
    child fails (e.g. a replacement that refers to a missing group)."""
    unique = sorted(set(names))
    if not unique:
        return {}
    payload = json.dumps({"pattern": pattern, "new": new, "names": unique}).encode("utf-8")
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD], input=payload, capture_output=True,
                              timeout=budget_s, check=False)
    except subprocess.TimeoutExpired:
        raise RegexTooSlow(f"tag: the regular expression {pattern!r} took longer than {budget_s:g} s on this "
                           "folder's tags and was stopped (nested repeats such as (a+)+ can take forever); "
                           "simplify it") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(f"tag: the regular expression {pattern!r} failed: {lines[-1] if lines else done.returncode}")
    return json.loads(done.stdout.decode("utf-8"))
