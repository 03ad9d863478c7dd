"""The dataset editor's unsaved state (web/datasetEditor/state.js) under node: undo/redo, a caption
edited back to its listed text is no longer an edit, an edit keeps its base version when the list
changes, and what Save sends."""
from __future__ import annotations

import json

from tests.support.node_js import needs_node, run_js

LISTING = {"items": [{"name": "a.png", "caption": "cat, dog", "version": "v1", "has_caption": True}],
           "edits": {"excluded": ["b.png"], "crops": {}}, "edits_version": "e1"}
RELISTED = {"items": [{"name": "a.png", "caption": "changed on disk", "version": "v2", "has_caption": True}]}

SCENARIO = """
    const s = new mod.EditState();
    s.absorb(LISTING);
    const out = {loaded: [s.caption("a.png"), [...s.excluded], s.dirty]};
    s.record({captions: {"a.png": ["cat, dog", "cat"]}}, "edit");
    s.record({crops: {"a.png": [null, [0, 0, 1, 1]]}}, "crop");
    out.edited = JSON.parse(JSON.stringify([s.caption("a.png"), s.dirty, s.saveBody(false)]));
    s.undoStep();
    s.undoStep();
    out.undone = [s.caption("a.png"), s.captions.size, s.crops["a.png"] ?? null, s.undoStep()];
    s.redoStep();
    out.redone = s.caption("a.png");
    s.absorb(RELISTED);
    out.kept = s.saveBody(true).captions;
    s.saved({versions: {"a.png": "v3"}, edits_version: "e2"});
    out.saved = [s.dirty, s.items.get("a.png"), s.undoStep()];
    return out;
"""


@needs_node
def test_undo_redo_and_what_save_sends(tmp_path):
    body = f"const LISTING = {json.dumps(LISTING)}; const RELISTED = {json.dumps(RELISTED)};\n{SCENARIO}"
    out = run_js("datasetEditor/state.js", body, tmp_path)
    assert out["loaded"] == ["cat, dog", ["b.png"], False]
    assert out["edited"] == ["cat", True, {
        "captions": [{"name": "a.png", "text": "cat", "base": "v1"}], "force": False,
        "edits": {"excluded": ["b.png"], "crops": {"a.png": [0, 0, 1, 1]}}, "edits_base": "e1"}]
    assert out["undone"] == ["cat, dog", 0, None, False], "undone back to the listed text: no edit left"
    assert out["redone"] == "cat"
    assert out["kept"] == [{"name": "a.png", "text": "cat", "base": "v1"}], \
        "a re-list does not move an edit's base version (so Save can detect the change on disk)"
    assert out["saved"] == [False, {"caption": "cat", "version": "v3", "has_caption": True}, False]
