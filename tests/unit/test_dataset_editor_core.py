"""The dataset editor's pure core: tag operations, folder index and filters, the edits sidecar,
and saving captions with restore points and conflict detection."""
from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from hypernet.data import caption_save
from hypernet.data.caption_save import CaptionChange, list_restore_points, restore, save
from hypernet.data.dataset import Dataset, DatasetItem, load_item_image
from hypernet.data.edit import EditOp, apply_op, dedupe, edit_caption, join_tags, plan_bulk, split_tags, tag_name
from hypernet.data.index import Filter, content_hash, list_page, resolve_image, scan_folder, tag_counts, with_overrides
from hypernet.data.sidecar import (SIDECAR_NAME, ConflictError, Edits, apply_edits, crop_pixels, read_edits,
                                      validate_box, write_edits)


# ------------------------------------------------------------------ tags


@pytest.mark.parametrize("tag, name", [("(cat:1.2)", "cat"), ("[cat]", "cat"), ("((cat))", "cat"), ("cat", "cat"),
                                       ("(cat", "(cat"), ("{cat:0.5}", "cat"), ("cat (animal)", "cat (animal)")])
def test_tag_name_strips_weight_syntax_only(tag, name):
    assert tag_name(tag) == name


def test_add_front_and_back_skip_present_tags():
    tags = ["a", "(b:1.2)"]
    assert apply_op(tags, EditOp("add", "x, b", position="front")) == ["x", "a", "(b:1.2)"]
    assert apply_op(tags, EditOp("add", "y")) == ["a", "(b:1.2)", "y"]
    assert tags == ["a", "(b:1.2)"], "the input list is not changed"


def test_remove_matches_weighted_forms():
    assert apply_op(["a", "(b:1.2)", "[b]", "c"], EditOp("remove", "b")) == ["a", "c"]


def test_replace_exact_keeps_the_weight_and_dedupes():
    assert apply_op(["(old:1.3)", "x"], EditOp("replace", "old", "new")) == ["(new:1.3)", "x"]
    assert apply_op(["old", "new"], EditOp("replace", "old", "new")) == ["new"]
    assert apply_op(["old", "x"], EditOp("replace", "old", "")) == ["x"]
    assert apply_op(["old", "x"], EditOp("replace", "old", "p, q")) == ["p", "q", "x"]


def test_replace_regex_with_groups_matches_whole_names():
    op = EditOp("replace", r"(\w+) hair", r"\1_hair", regex=True)
    assert apply_op(["red hair", "hair", "long red hair ribbon", "(blue hair:1.1)"], op) == \
        ["red_hair", "hair", "long red hair ribbon", "(blue_hair:1.1)"]


def test_regex_remove_and_unicode():
    assert apply_op(["猫耳", "猫", "dog"], EditOp("remove", "猫.*", regex=True)) == ["dog"]


def test_dedupe_and_sort():
    assert dedupe(["a", "(a:1.1)", "b", "a"]) == ["a", "b"]
    assert apply_op(["b", "(A:1.2)", "c", "a"], EditOp("sort")) == ["(A:1.2)", "a", "b", "c"]


def test_edit_caption_keeps_unchanged_text_verbatim_and_handles_empty():
    assert edit_caption("a,b", EditOp("remove", "zzz")) == "a,b"
    assert edit_caption("", EditOp("add", "x")) == "x"
    assert edit_caption("x", EditOp("remove", "x")) == ""


def test_plan_bulk_is_a_dry_run_listing_only_changes():
    captions = {"1.png": "a, b", "2.png": "c", "3.png": ""}
    changed = plan_bulk(captions, EditOp("replace", "b", "z"))
    assert changed == {"1.png": "a, z"}
    assert captions["1.png"] == "a, b"
    assert len(plan_bulk(captions, EditOp("add", "t", position="front"))) == 3


@pytest.mark.parametrize("data, field", [
    ({"kind": "explode"}, "op"), ({"kind": "add", "tag": " "}, "tag"), ({"kind": "remove"}, "tag"),
    ({"kind": "replace", "tag": "(", "regex": True}, "regular expression"),
    ({"kind": "add", "tag": "x", "position": "middle"}, "position"),
])
def test_bad_ops_are_named_errors(data, field):
    with pytest.raises(ValueError, match=field):
        EditOp.from_dict(data)


def test_join_round_trip():
    assert split_tags(join_tags(["a", "(b, c:1.2)"])) == ["a", "(b, c:1.2)"]


# ------------------------------------------------------------------ index


def _png(path, size=(16, 8), color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "ds"
    for i, caption in enumerate(["cat, red hair", "dog, (red hair:1.2)", None, "cat, 犬", ""]):
        _png(root / f"img{i}.png")
        if caption is not None:
            (root / f"img{i}.txt").write_text(caption, encoding="utf-8")
    _png(root / "sub" / "deep.png")
    (root / ".hidden.png").write_bytes(b"x")
    (root / "notes.md").write_text("not an image")
    return root


def test_scan_lists_images_with_captions_and_versions(folder):
    entries = scan_folder(str(folder))
    assert [e.name for e in entries] == [f"img{i}.png" for i in range(5)]
    assert entries[0].caption == "cat, red hair" and entries[0].has_caption
    assert entries[2].caption == "" and not entries[2].has_caption and entries[2].version is None
    assert entries[0].version == content_hash((folder / "img0.txt").read_bytes())
    assert [e.name for e in scan_folder(str(folder), recursive=True)][-1] == "sub/deep.png"


def test_tag_counts_and_filters(folder):
    entries = scan_folder(str(folder))
    counts = tag_counts(e.caption for e in entries)
    assert counts == {"cat": 2, "red hair": 2, "dog": 1, "犬": 1}
    names = lambda flt, excluded=(): [e.name for e in list_page(entries, flt, set(excluded)).matched]
    assert names(Filter(include=("cat", "red hair"))) == ["img0.png"]
    assert names(Filter(include=("cat", "dog"), mode="any")) == ["img0.png", "img1.png", "img3.png"]
    assert names(Filter(exclude=("cat",))) == ["img1.png", "img2.png", "img4.png"]
    assert names(Filter(text="RED")) == ["img0.png", "img1.png"]
    assert names(Filter(uncaptioned=True)) == ["img2.png", "img4.png"]
    assert names(Filter(excluded=True), ["img3.png"]) == ["img3.png"]
    assert names(Filter.from_dict({"include": ["(cat:1.5)"]})) == ["img0.png", "img3.png"]
    listing = list_page(entries, Filter(include=("cat",)), set(), offset=1, limit=1)
    assert [e.name for e in listing.page] == ["img3.png"] and listing.matched_tags["犬"] == 1
    assert listing.dataset_tags["dog"] == 1 and "dog" not in listing.matched_tags
    with pytest.raises(ValueError, match="mode"):
        Filter(mode="xor")
    with pytest.raises(ValueError, match="limit"):
        list_page(entries, Filter(), set(), limit=10 ** 6)


def test_overrides_filter_on_unsaved_text(folder):
    entries = with_overrides(scan_folder(str(folder)), {"img2.png": "cat"})
    assert [e.name for e in list_page(entries, Filter(include=("cat",)), set()).matched] == \
        ["img0.png", "img2.png", "img3.png"]


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", "a/../../x.png", "img0.png\x00", "..\\x.png",
                                  "", "./img0.png", "notes.md", "img0.txt"])
def test_resolve_image_refuses_anything_but_listed_images(folder, name):
    with pytest.raises(ValueError):
        resolve_image(str(folder), name)


def test_resolve_image_refuses_symlinks_out(folder, tmp_path):
    _png(tmp_path / "outside.png")
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(PermissionError):
        resolve_image(str(folder), "link.png")
    assert resolve_image(str(folder), "img0.png") == str(folder / "img0.png")
    with pytest.raises(FileNotFoundError):
        resolve_image(str(folder), "nothere.png")


# ------------------------------------------------------------------ sidecar


def test_edits_round_trip_and_conflicts(folder):
    assert read_edits(str(folder)).version is None
    first = write_edits(str(folder), Edits({"img1.png"}, {"img0.png": (0.0, 0.0, 0.5, 1.0)}), None)
    loaded = read_edits(str(folder))
    assert loaded.excluded == {"img1.png"} and loaded.crops == {"img0.png": (0.0, 0.0, 0.5, 1.0)}
    assert loaded.version == first.version is not None
    with pytest.raises(ConflictError) as info:
        write_edits(str(folder), Edits({"img3.png"}), None)  # a tab that loaded before the first write
    assert info.value.changes[0]["excluded_added"] == ["img1.png"]
    assert read_edits(str(folder)).excluded == {"img1.png"}, "a conflict writes nothing"
    write_edits(str(folder), Edits({"img3.png"}), loaded.version)
    assert read_edits(str(folder)).excluded == {"img3.png"}


@pytest.mark.parametrize("box", [[0, 0, 1], [0.5, 0, 0.5, 1], [-0.1, 0, 1, 1], [0, 0, 1, 1.5], "abcd", None])
def test_bad_crop_boxes_are_refused(box):
    with pytest.raises(ValueError, match="box"):
        validate_box(box)


def test_a_broken_sidecar_is_a_named_error(folder):
    (folder / SIDECAR_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=SIDECAR_NAME):
        read_edits(str(folder))


def test_apply_edits_skips_excluded_and_crops_without_touching_files(folder):
    before = (folder / "img0.png").read_bytes()
    items = [DatasetItem(str(folder / f"img{i}.png"), 16, 8, f"c{i}") for i in range(3)]
    dataset, stats = apply_edits(Dataset(items, str(folder)),
                                 Edits({"img1.png"}, {"img0.png": (0.25, 0.0, 0.75, 1.0)}))
    assert [i.stem for i in dataset.items] == ["img0", "img2"]
    assert stats == {"excluded": 1, "cropped": 1}
    assert dataset.items[0].size == (8, 8) and load_item_image(dataset.items[0]).size == (8, 8)
    assert (folder / "img0.png").read_bytes() == before
    with pytest.raises(ValueError, match="every image"):
        apply_edits(Dataset(items[:1], str(folder)), Edits({"img0.png"}))


def test_crop_pixels_stays_inside_and_non_empty():
    assert crop_pixels((0.0, 0.0, 1.0, 1.0), 10, 20) == (0, 0, 10, 20)
    assert crop_pixels((0.99, 0.99, 1.0, 1.0), 10, 10) == (9, 9, 1, 1)


# ------------------------------------------------------------------ save / restore


def _change(folder, name, text):
    txt = folder / (os.path.splitext(name)[0] + ".txt")
    base = content_hash(txt.read_bytes()) if txt.exists() else None
    return CaptionChange(name, text, base)


def test_save_writes_atomically_and_keeps_a_restore_point(folder):
    result = save(str(folder), [_change(folder, "img0.png", "cat, blue hair"), _change(folder, "img2.png", "new")])
    assert sorted(result.written) == ["img0.png", "img2.png"]
    assert (folder / "img0.txt").read_text() == "cat, blue hair"
    assert (folder / "img2.txt").read_text() == "new"
    assert result.versions["img2.png"] == content_hash(b"new")
    points = list_restore_points(str(folder))
    assert [p["id"] for p in points] == [result.restore_point] and points[0]["captions"] == 2
    assert not [n for n in os.listdir(folder) if ".hntmp-" in n]
    restore(str(folder), result.restore_point)
    assert (folder / "img0.txt").read_text() == "cat, red hair"
    assert not (folder / "img2.txt").exists(), "a caption the save created goes away on restore"
    assert len(list_restore_points(str(folder))) == 2, "the restore itself is restorable"


def test_save_detects_conflicts_and_writes_nothing(folder):
    stale = _change(folder, "img0.png", "mine")
    other = _change(folder, "img1.png", "also mine")
    (folder / "img0.txt").write_text("changed in another tab")
    with pytest.raises(ConflictError) as info:
        save(str(folder), [stale, other])
    (conflict,) = info.value.changes
    assert conflict["name"] == "img0.png" and conflict["current_text"] == "changed in another tab"
    assert conflict["your_text"] == "mine"
    assert (folder / "img1.txt").read_text() == "dog, (red hair:1.2)", "nothing written on conflict"
    assert list_restore_points(str(folder)) == []
    save(str(folder), [stale], force=True)
    assert (folder / "img0.txt").read_text() == "mine"


def test_a_caption_created_meanwhile_is_a_conflict(folder):
    change = _change(folder, "img2.png", "x")
    (folder / "img2.txt").write_text("someone else")
    with pytest.raises(ConflictError):
        save(str(folder), [change])


def test_save_skips_unchanged_and_empty_new_captions(folder):
    result = save(str(folder), [_change(folder, "img0.png", "cat, red hair"), _change(folder, "img2.png", "")])
    assert result.written == [] and result.restore_point is None
    assert not (folder / "img2.txt").exists()


def test_save_with_edits_and_restore_them(folder):
    result = save(str(folder), [], edits=Edits({"img1.png"}), edits_base=None)
    assert read_edits(str(folder)).excluded == {"img1.png"}
    with pytest.raises(ConflictError):
        save(str(folder), [], edits=Edits(set()), edits_base=None)
    restore(str(folder), result.restore_point)
    assert not (folder / SIDECAR_NAME).exists()


def test_weighted_and_unicode_captions_survive_a_save(folder):
    text = "(猫:1.2), [café], a\\(b\\)"
    save(str(folder), [_change(folder, "img0.png", text)])
    assert scan_folder(str(folder))[0].caption == text


@pytest.mark.parametrize("point", ["../../x", "", "zz", "20260101-000000-abcdef"])
def test_bad_restore_ids(folder, point):
    with pytest.raises((ValueError, FileNotFoundError)):
        restore(str(folder), point)


def test_restore_point_file_is_plain_json(folder):
    result = save(str(folder), [_change(folder, "img0.png", "x")])
    data = json.loads((folder / caption_save.RESTORE_FOLDER / f"{result.restore_point}.json").read_text())
    assert data["captions"] == {"img0.png": "cat, red hair"}


def test_caption_symlink_out_of_the_folder_is_not_written(folder, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (folder / "img2.txt").symlink_to(outside)
    with pytest.raises(PermissionError):
        save(str(folder), [CaptionChange("img2.png", "x", content_hash(b"keep"))])
    assert outside.read_text() == "keep"


# ------------------------------------------------------------------ fast paths agree with the slow ones


def test_tag_names_fast_path_matches_split(folder):
    from hypernet.data.edit import tag_names

    for caption in ["a, b ,c", "a,  b", "(a:1.2), b", "x\ty, z", ""]:
        assert tag_names(caption) == {tag_name(t) for t in split_tags(caption)}


def test_scan_cache_reuses_and_notices_rewrites(folder):
    from hypernet.data.index import ScanCache

    cache = ScanCache()
    first = scan_folder(str(folder), cache=cache)
    assert [(e.name, e.caption, e.version) for e in first] == \
        [(e.name, e.caption, e.version) for e in scan_folder(str(folder))]
    assert first[0].names == {"cat", "red hair"}
    (folder / "img0.txt").write_text("rewritten, tag")  # in place: size and mtime change
    save(str(folder), [_change(folder, "img1.png", "atomically saved")])
    again = {e.name: e for e in scan_folder(str(folder), cache=cache)}
    assert again["img0.png"].caption == "rewritten, tag" and again["img0.png"].names == {"rewritten", "tag"}
    assert again["img1.png"].caption == "atomically saved"
    assert again["img1.png"].version == content_hash(b"atomically saved")


def test_many_captions_save_in_one_batch_and_symlinks_are_still_refused(tmp_path):
    root = tmp_path / "many"
    for i in range(80):
        _png(root / f"{i:03d}.png", size=(4, 4))
        (root / f"{i:03d}.txt").write_text(f"t{i}")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (root / "079.txt").unlink()
    (root / "079.txt").symlink_to(outside)
    changes = [CaptionChange(f"{i:03d}.png", f"n{i}", content_hash(f"t{i}".encode())) for i in range(79)]
    with pytest.raises(PermissionError):
        save(str(root), changes + [CaptionChange("079.png", "x", content_hash(b"keep"))])
    assert outside.read_text() == "keep" and (root / "000.txt").read_text() == "t0"
    result = save(str(root), changes)
    assert len(result.written) == 79 and (root / "078.txt").read_text() == "n78"
    assert not [p for p in root.iterdir() if ".hntmp-" in p.name]


def test_write_many_leaves_targets_alone_when_a_write_fails(tmp_path):
    from hypernet.util.atomic_batch import write_many

    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(OSError):
        write_many([(str(tmp_path / "a.txt"), b"new"), (str(tmp_path / "missing" / "b.txt"), b"x")])
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    write_many([(str(tmp_path / "a.txt"), b"new")])
    assert (tmp_path / "a.txt").read_text() == "new"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_regex_matching_runs_with_a_time_budget():
    from hypernet.data.regex_budget import RegexTooSlow, full_matches

    assert full_matches("c(a)t", "d\\1g", ["cat", "dog", "cat"]) == {"cat": "dag"}
    with pytest.raises(RegexTooSlow, match="took longer"):
        full_matches("(a+)+$", "", ["a" * 40 + "b"], budget_s=1.0)


def test_a_restore_point_is_checked_as_a_whole():
    from hypernet.data.restore_point import parse_restore_point

    good = {"id": "p", "caption_extension": ".txt", "captions": {"a.png": "x", "sub/b.png": None}, "edits": False,
            "created": 5, "label": "save"}
    point = parse_restore_point(json.dumps(good).encode(), "p", "p.json")
    assert point.captions == {"a.png": "x", "sub/b.png": None} and point.created == 5.0
    for bad in ({**good, "captions": {"a.png": "\udc80"}}, {**good, "created": "x", "edits": True},
                {**good, "captions": {"sub/../a.png": "x"}}, {**good, "captions": {"a\\b.png": "x"}}):
        with pytest.raises(ValueError, match="p.json"):
            parse_restore_point(json.dumps(bad).encode(), "p", "p.json")
