"""Post-processing rules: thresholds, exclusions, underscores/kaomoji, brackets, sorting, rating, max_tags."""
from __future__ import annotations

import numpy as np
import pytest

from hypernet.tagger.errors import TaggerFilesMissingError, TaggerModelError
from hypernet.tagger.tags import (
    KAOMOJI,
    TagOptions,
    TagTable,
    format_tag,
    load_tag_table,
    normalize_tag,
    select_tags,
)
from tests.support.fake_tagger import TAG_NAMES, TAGS, tags_csv

TABLE = TagTable(tuple(n for n, _ in TAGS), tuple(c for _, c in TAGS))


def vec(mapping: dict[str, float]) -> np.ndarray:
    p = np.zeros(len(TAGS), dtype=np.float32)
    for key, value in mapping.items():
        p[TAG_NAMES.index(key)] = value
    return p


def test_load_tag_table_reads_names_and_categories(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(tags_csv(), encoding="utf-8")
    table = load_tag_table(path)
    assert table.names == tuple(TAG_NAMES)
    assert table.indices(9) == [0, 1, 2, 3]
    assert [table.names[i] for i in table.indices(4)][0] == "hatsune_miku"


def test_load_tag_table_missing_names_file_and_fix(tmp_path):
    with pytest.raises(TaggerFilesMissingError) as err:
        load_tag_table(tmp_path / "nope.csv")
    assert "nope.csv" in str(err.value) and "selected_tags.csv" in str(err.value)


@pytest.mark.parametrize("content", ["a,b,c\n1,2,3\n", "tag_id,name,category,count\n1,x,notint,3\n", ""])
def test_load_tag_table_rejects_bad_csv(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaggerModelError, match="bad.csv"):
        load_tag_table(path)


def test_thresholds_are_per_category_and_inclusive():
    opts = TagOptions(general_threshold=0.35, character_threshold=0.85, sort="csv")
    result = select_tags(vec({"1girl": 0.35, "smile": 0.3499, "hatsune_miku": 0.84, "c.c.": 0.85}), TABLE, opts)
    assert result.confidences.keys() == {"1girl", "c.c."}


def test_ratings_are_never_tags_unless_asked_and_top_rating_wins():
    p = vec({"general": 0.2, "sensitive": 0.7, "questionable": 0.6, "1girl": 0.9})
    plain = select_tags(p, TABLE, TagOptions())
    assert plain.tags == ["1girl"]
    assert plain.rating == "sensitive"
    assert plain.ratings["questionable"] == pytest.approx(0.6)
    rated = select_tags(p, TABLE, TagOptions(include_rating=True, max_tags=1))
    assert rated.tags == ["sensitive", "1girl"]


def test_exclude_matches_with_or_without_underscores_and_case():
    p = vec({"long_hair": 0.9, "blue_sky": 0.9, "smile": 0.9, "hat_(object)": 0.9})
    opts = TagOptions(exclude_tags=" Long Hair, blue_sky ,hat \\(object\\)", sort="csv")
    assert select_tags(p, TABLE, opts).tags == ["smile"]


def test_replace_underscores_keeps_kaomoji_and_short_tags():
    p = vec({"long_hair": 0.9, "^_^": 0.9, ">_<": 0.9, "(o)_(o)": 0.9, "kirisame_marisa_(touhou)": 0.9})
    spaced = select_tags(p, TABLE, TagOptions(sort="csv", escape_brackets=False)).tags
    assert spaced == ["kirisame marisa (touhou)", "long hair", "^_^", ">_<", "(o)_(o)"]
    raw = select_tags(p, TABLE, TagOptions(sort="csv", replace_underscores=False, escape_brackets=False)).tags
    assert raw == ["kirisame_marisa_(touhou)", "long_hair", "^_^", ">_<", "(o)_(o)"]


def test_format_tag_rules():
    assert format_tag("x_x", True, False) == "x_x"  # short: kept
    assert format_tag("||_||", True, False) == "||_||"  # listed kaomoji longer than 3
    assert format_tag("a_b_c", True, False) == "a b c"
    assert format_tag("hat_(object)", True, True) == "hat \\(object\\)"
    assert format_tag("hat_(object)", False, True) == "hat_\\(object\\)"
    assert "^_^" in KAOMOJI and "o_o" in KAOMOJI


def test_escape_brackets_toggle():
    p = vec({"rem_(re:zero)": 0.95})
    assert select_tags(p, TABLE, TagOptions()).tags == ["rem \\(re:zero\\)"]
    assert select_tags(p, TABLE, TagOptions(escape_brackets=False)).tags == ["rem (re:zero)"]


def test_sort_orders_and_characters_first():
    p = vec({"smile": 0.5, "1girl": 0.99, "blue_sky": 0.7, "hatsune_miku": 0.9, "c.c.": 0.95})
    by_conf = select_tags(p, TABLE, TagOptions(sort="confidence")).tags
    assert by_conf == ["c.c.", "hatsune miku", "1girl", "blue sky", "smile"]
    mixed = select_tags(p, TABLE, TagOptions(sort="confidence", characters_first=False)).tags
    assert mixed == ["1girl", "c.c.", "hatsune miku", "blue sky", "smile"]
    alpha = select_tags(p, TABLE, TagOptions(sort="alphabetical", characters_first=False)).tags
    assert alpha == ["1girl", "blue sky", "c.c.", "hatsune miku", "smile"]
    alpha_cf = select_tags(p, TABLE, TagOptions(sort="alphabetical")).tags
    assert alpha_cf == ["c.c.", "hatsune miku", "1girl", "blue sky", "smile"]
    csv_order = select_tags(p, TABLE, TagOptions(sort="csv", characters_first=False)).tags
    assert csv_order == ["1girl", "smile", "blue sky", "hatsune miku", "c.c."]


def test_max_tags_keeps_most_confident_then_orders():
    p = vec({"smile": 0.5, "1girl": 0.99, "blue_sky": 0.7, "solo": 0.6})
    assert select_tags(p, TABLE, TagOptions(max_tags=2, sort="alphabetical")).tags == ["1girl", "blue sky"]
    assert len(select_tags(p, TABLE, TagOptions(max_tags=0)).tags) == 4


def test_size_mismatch_is_named_error():
    with pytest.raises(TaggerModelError, match="does not"):
        select_tags(np.zeros(len(TAGS) + 1), TABLE, TagOptions())


@pytest.mark.parametrize(
    "bad",
    [
        {"general_threshold": 1.5}, {"character_threshold": -0.1}, {"sort": "random"},
        {"max_tags": -1}, {"exclude_tags": None}, {"general_threshold": True},
    ],
)
def test_options_validation_names_the_field(bad):
    field = next(iter(bad))
    with pytest.raises(ValueError, match=field):
        TagOptions(**bad)


def test_options_round_trip_and_unknown_keys():
    opts = TagOptions(general_threshold=0.5, sort="alphabetical", max_tags=7)
    assert TagOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError, match="bogus"):
        TagOptions.from_dict({"bogus": 1})


def test_normalize_tag():
    assert normalize_tag(" Hat_\\(Object\\) ") == normalize_tag("hat (object)")
