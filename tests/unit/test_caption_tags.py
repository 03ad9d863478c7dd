"""One definition of a caption's tags: the Python split and the browser editor's copy agree on
the shared cases, and training, the tagger and the editor all use the Python one."""
from __future__ import annotations

import pytest

from hypernet.data import edit
from hypernet.tagger.captions import merge_caption
from hypernet.train import templates
from hypernet.train.templates import augment_tags
from hypernet.util.caption_tags import join_tags, split_tags
from tests.support.node_js import call_js, load_cases, needs_node

CASES = load_cases("split_tags")


@pytest.mark.parametrize("caption, tags", CASES)
def test_split_tags_cases(caption, tags):
    assert split_tags(caption) == tags


@needs_node
def test_the_editor_splits_tags_like_python(tmp_path):
    got = call_js("datasetEditor/tags.js", "splitTags", [[caption] for caption, _ in CASES], tmp_path)
    assert got == [tags for _, tags in CASES]


def test_join_then_split_round_trips():
    tags = ["a", "(b, c:1.2)", "d\\(e"]
    assert split_tags(join_tags(tags)) == tags


def test_training_editor_and_tagger_use_the_one_split():
    assert templates.split_tags is split_tags and edit.split_tags is split_tags


def test_tag_shuffle_moves_a_bracketed_group_as_one_tag():
    caption = "(red, blue:1.2), cat, dog, tree, sky"
    for step in range(10):
        out = augment_tags(caption, seed=3, step=step, item_index=0, shuffle=True)
        assert sorted(split_tags(out)) == sorted(split_tags(caption))


def test_tagger_merge_keeps_a_bracketed_group_of_the_existing_caption():
    assert merge_caption("(red, blue:1.2), cat", ["dog", "cat"], "append") == "(red, blue:1.2), cat, dog"


@pytest.mark.parametrize("caption", ["a, b,c", "a,,b", " x y ,  z", "k\nl, m", ""])
def test_plain_comma_fast_path_equals_the_bracket_aware_split(caption):
    from hypernet.util.caption_tags import _split_top_level

    assert caption.split(",") == _split_top_level(caption)
