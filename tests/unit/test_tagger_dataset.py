"""The tagger's dataset side without a host: output captions per mode and the node's report."""
from __future__ import annotations

import pytest

from hypernet.data.dataset import Dataset, DatasetItem
from hypernet.tagger.dataset import captioned_dataset, format_report, new_caption
from hypernet.tagger.tags import TagResult


@pytest.mark.parametrize("mode, expected", [
    ("off", "cat, hat"),
    ("overwrite", "cat, hat"),
    ("existing_first", "old, cat, hat"),
    ("new_first", "cat, hat, old"),
    ("append", "old, cat, hat"),  # the old names, from saved workflows
    ("prepend", "cat, hat, old"),
    ("only_missing", "old, cat"),
])
def test_new_caption_per_mode(mode, expected):
    assert new_caption("old, cat", TagResult(source="a.png", tags=["cat", "hat"]), mode) == expected


def test_only_missing_fills_an_empty_caption_and_a_failed_image_keeps_its_caption():
    assert new_caption("  ", TagResult(source="a.png", tags=["cat"]), "only_missing") == "cat"
    assert new_caption("old", TagResult(source="a.png", error="cannot read image"), "overwrite") == "old"


def test_captioned_dataset_replaces_captions_and_appends_history():
    items = [DatasetItem(path="/d/a.png", width=8, height=8, caption="x"),
             DatasetItem(path="/d/b.png", width=8, height=8, caption="")]
    source = Dataset(items, "/d", [{"step": "load"}])
    results = [TagResult(source="/d/a.png", tags=["cat"]), TagResult(source="/d/b.png", tags=["dog", "sky"])]
    out = captioned_dataset(source, results, "overwrite", {"step": "wd14_tag"})
    assert [item.caption for item in out.items] == ["cat", "dog, sky"]
    assert [h["step"] for h in out.history] == ["load", "wd14_tag"]
    assert [item.caption for item in source.items] == ["x", ""], "the input dataset is not changed"


def test_report_counts_skips_and_caption_actions():
    results = [TagResult(source="/d/a.png", tags=["cat"], caption_action="written"),
               TagResult(source="/d/b.png", error="cannot read image: truncated")]
    report = format_report("wd-v1-4", [], results, "overwrite").splitlines()
    assert report[0] == "WD14 Tagger (wd-v1-4): 1 of 2 image(s) tagged"
    assert report[1] == "Caption files: written 1"
    assert "Most frequent: cat (1)" in report
    assert "  skipped /d/b.png: cannot read image: truncated" in report
    assert "  a.png: cat" in report


def test_report_with_captions_off_says_none_were_written():
    report = format_report("m", [TagResult(source="img 0", tags=["a"])], [], "off")
    assert "Caption files: none (no dataset connected)" in report
