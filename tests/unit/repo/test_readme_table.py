"""The README's node table must match the node catalog the pack registers."""
from __future__ import annotations

import re

from tests.support.pack_files import CATALOG, REPO_ROOT

README = REPO_ROOT / "README.md"


def readme_node_rows() -> dict[str, str]:
    """node id -> display name, from the table rows that start with a `code` node id."""
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`([A-Za-z0-9]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_readme_lists_exactly_the_registered_nodes():
    expected = {node_id: display for node_id, display, _, _ in CATALOG}
    assert readme_node_rows() == expected, "update the node table in README.md (id | display name | ...)"


def test_catalog_ids_are_unique_pascal_case_and_not_stock_names():
    ids = [row[0] for row in CATALOG]
    assert len(ids) == len(set(ids))
    stock = {"HypernetworkLoader", "CheckpointLoaderSimple", "KSampler", "LoraLoader"}
    for node_id in ids:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", node_id), node_id
        assert node_id not in stock
