"""Finding taggers in folders (flat and Hugging Face layouts) and resolving names safely."""
from __future__ import annotations

import pytest

from hypernet.tagger.errors import TaggerFilesMissingError
from hypernet.tagger.files import find_incomplete_taggers, list_taggers, resolve_tagger


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    touch(a / "flat.onnx"), touch(a / "flat.csv")
    touch(a / "nested" / "model.onnx"), touch(a / "nested" / "selected_tags.csv")
    touch(a / "nocsv.onnx")
    touch(a / ".hidden.onnx"), touch(a / ".hidden.csv")
    touch(a / "notes.txt")
    touch(b / "flat.onnx"), touch(b / "flat.csv")
    touch(b / "other.onnx"), touch(b / "other.csv")
    return [a, b, tmp_path / "missing-folder"]


def test_list_taggers_both_layouts_complete_only(folders):
    assert list_taggers(folders) == ["flat", "nested", "other"]


def test_resolve_first_folder_wins(folders):
    files = resolve_tagger("flat", folders)
    assert files.model_path == folders[0] / "flat.onnx"
    assert files.tags_path == folders[0] / "flat.csv"
    nested = resolve_tagger("nested", folders)
    assert nested.model_path == folders[0] / "nested" / "model.onnx"
    assert nested.tags_path == folders[0] / "nested" / "selected_tags.csv"


def test_missing_csv_is_named_error_with_expected_path(folders):
    with pytest.raises(TaggerFilesMissingError) as err:
        resolve_tagger("nocsv", folders)
    assert str(folders[0] / "nocsv.csv") in str(err.value)
    assert find_incomplete_taggers(folders) == {"nocsv": folders[0] / "nocsv.csv"}


def test_unknown_name_says_where_to_put_files(folders):
    with pytest.raises(TaggerFilesMissingError) as err:
        resolve_tagger("ghost", folders)
    msg = str(err.value)
    assert str(folders[0]) in msg and "ghost.onnx" in msg and "ghost.csv" in msg


@pytest.mark.parametrize("name", ["../b/other", "..", "a/b", "a\\b", "/etc/passwd", "C:evil", "", "x\x00y"])
def test_names_that_escape_are_rejected(folders, name):
    with pytest.raises(ValueError, match="name"):
        resolve_tagger(name, folders)
