"""Bench cases of the dataset editor (pure core only): listing a caption folder with tag counts,
and a bulk tag replace saved over it, each against a bare Python loop doing the same file I/O.

- list: ours = `scan_folder` + `list_page` (tags of every caption counted for the whole folder,
  one page cut) with the route's `ScanCache` (a caption is re-read only when its stat changed);
  baseline = `os.scandir` and reading and decoding every caption file. Also measured cold (no
  cache: every caption read, decoded and parsed), the editor's first open of a folder.
- bulk replace: ours = `plan_bulk` + `caption_save.save` (conflict check re-reads each caption,
  one restore point, atomic temp-file-and-rename writes); baseline = a loop reading every caption,
  `str.replace` and writing it back in place with `open(..., "w")`, then one `os.sync()` (ours
  syncs its batch once too, so neither variant is charged for flushing the other's writes, and
  both end with the data on disk). Every call rewrites every caption, on its own fresh copy of the
  folder (see `_fresh_rounds`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .harness import import_pure_core, interleaved, median

TAGS = ("portrait", "outdoors", "smile", "long hair", "(detailed:1.2)", "blue sky", "night", "red dress")


def _make_folder(folder: Path, count: int) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (40, 90, 200)).save(buffer, "PNG")
    png = buffer.getvalue()
    for i in range(count):
        (folder / f"{i:06d}.png").write_bytes(png)
        tags = [TAGS[(i + k) % len(TAGS)] for k in range(5)] + ["fromtag", f"id{i % 50}"]
        (folder / f"{i:06d}.txt").write_text(", ".join(tags), encoding="utf-8")


def _bare_read(folder: str) -> int:
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".txt"):
                with open(entry.path, "rb") as fh:
                    total += len(fh.read().decode("utf-8"))
    return total


def _bare_replace(folder: str, old: str, new: str) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".txt"):
                with open(entry.path, "r", encoding="utf-8") as fh:
                    text = fh.read()
                with open(entry.path, "w", encoding="utf-8") as fh:
                    fh.write(text.replace(old, new))
    os.sync()  # both variants leave their data on disk: ours syncs its batch before renaming


def _fresh_rounds(parent: Path, count: int, repeats: int, clock: str, variants: dict) -> dict[str, list[float]]:
    """Seconds per bulk save, each call on its own fresh copy of the folder (variants alternate order).

    ext4 skips inodes freed in the last seconds when it allocates new ones, so saving the same
    10,000 captions again right after a save (atomic writes free 10,000 inodes) costs ~10x more
    per file than one save does; a user does not save a whole folder several times a second.
    """
    import time

    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(repeats + 1):  # the first round is the warm-up
        names = list(variants) if round_index % 2 == 0 else list(reversed(variants))
        for name in names:
            target = parent / f"round{round_index}_{name}"
            target.mkdir()
            _make_folder(target, count)
            prepare, work = variants[name]
            prepare(str(target))
            os.sync()
            clock_fn = time.process_time if clock == "cpu" else time.perf_counter
            started = clock_fn()
            work(str(target))
            if round_index:
                times[name].append(clock_fn() - started)
    return times


def case_editor(args: dict[str, Any]) -> dict[str, Any]:
    """Seconds per call (median) for list and bulk replace, ours vs the bare loops."""
    import_pure_core()
    from hypernet.data import caption_save
    from hypernet.data.edit import EditOp, plan_bulk
    from hypernet.data.index import Filter, ScanCache, list_page, scan_folder

    count = int(args["count"])
    tmp = Path(tempfile.mkdtemp(prefix="hn_bench_editor_"))
    try:
        _make_folder(tmp, count)
        folder = str(tmp)

        cache = ScanCache()  # as the list route keeps one across requests

        def ours_list() -> None:
            entries = scan_folder(folder, cache=cache)
            listing = list_page(entries, Filter(), set(), 0, 200)
            assert listing.total == count and listing.dataset_tags["fromtag"] == count

        def ours_bulk(target: str) -> None:
            entries = scan_folder(target, cache=cache)
            changed = plan_bulk({e.name: e.caption for e in entries}, EditOp("replace", "fromtag", "totag"))
            versions = {e.name: e.version for e in entries}
            result = caption_save.save(target, [caption_save.CaptionChange(n, t, versions[n])
                                                for n, t in changed.items()])
            assert len(result.written) == count

        repeats, clock = int(args.get("repeats", 3)), args.get("clock", "cpu")
        lists = interleaved({"ours": ours_list, "baseline": lambda: _bare_read(folder)}, 1, repeats, clock)
        cold = interleaved({"ours": lambda: list_page(scan_folder(folder), Filter(), set(), 0, 200),
                            "baseline": lambda: _bare_read(folder)}, 1, repeats, clock)
        bulks = _fresh_rounds(tmp, count, repeats, clock, {
            "ours": (lambda target: scan_folder(target, cache=cache), ours_bulk),  # the editor listed it first
            "baseline": (lambda target: None, lambda target: _bare_replace(target, "fromtag", "totag"))})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"count": count, "list_ours": median(lists["ours"]), "list_baseline": median(lists["baseline"]),
            "list_cold_ours": median(cold["ours"]), "list_cold_baseline": median(cold["baseline"]),
            "bulk_ours": median(bulks["ours"]), "bulk_baseline": median(bulks["baseline"]),
            "samples": {"list": lists, "bulk": bulks}}


CASES = {"editor": case_editor}
