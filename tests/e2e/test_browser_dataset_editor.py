"""The dataset editor in the host's real UI (headless Chromium over the DevTools protocol): open it
from Load Dataset's "Edit dataset…" button, filter by a tag, bulk-replace a tag, edit one image's
tags, undo/redo, exclude an image, draw a crop box with the mouse, save with Ctrl+S; then the files
on disk and a LoadDataset -> Preprocess run show the new captions, the exclusion and the crop.

HN_UPDATE_SCREENSHOTS=1 also writes docs/dataset_editor.png (the README's screenshot)."""
from __future__ import annotations

import json
import uuid

import pytest
from PIL import Image

from hypernet.preprocess.captions import LEGACY_CAPTION_ACTIONS
from hypernet.tagger.captions import LEGACY_CAPTION_MODES
from tests.e2e.test_browser import ARTIFACTS, DOCS, Chromium, find_chromium, publish
from tests.support.graphs import Graph
from tests.support.images import pattern_rgb

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")

CAPTIONS = ["cat, red hair, smile", "dog, red hair", "cat, blue eyes, red hair", "bird, sky", "cat, (red hair:1.2)",
            "dog, grass", "tree", None, "cat, night", "flower, red hair", "car, road", "cat, dog"]
SIZES = [(96, 64), (64, 64), (64, 96), (80, 80)]


@pytest.fixture(scope="module")
def folder(comfy_server):
    root = comfy_server.layout.input / f"ui_edit_{uuid.uuid4().hex[:6]}"
    root.mkdir()
    for i, caption in enumerate(CAPTIONS):
        pattern_rgb(*SIZES[i % len(SIZES)], seed=i).save(root / f"img{i:02d}.png")
        if caption is not None:
            (root / f"img{i:02d}.txt").write_text(caption, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def page(comfy_server, tmp_path_factory):
    browser = Chromium(find_chromium(), tmp_path_factory.mktemp("chromium-editor"))
    browser.start()
    try:
        browser.navigate(comfy_server.url)
        browser.wait_for("window.app && app.graph && window.hnDatasetEditor && "
                         "app.extensions.some((e) => e.name === 'hypernetwork.datasetEditor')", timeout=90)
        yield browser
    finally:
        browser.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dataset_editor_console.log").write_text("\n".join(browser.console + browser.exceptions) + "\n")


def js(value) -> str:
    return json.dumps(value)


def cards(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('.hn-de-card')].map((c) => c.dataset.name)")


KEYS = {"ArrowRight": ("ArrowRight", 39), "ArrowLeft": ("ArrowLeft", 37), "z": ("KeyZ", 90), "s": ("KeyS", 83)}


def key(page, key_name: str, **mods) -> None:
    """A real key press (DevTools input events) with the focus on the editor, not in a text field."""
    page.evaluate("document.activeElement?.blur(), document.querySelector('.hn-de').focus(), true")
    code, vk = KEYS[key_name]
    modifiers = (2 if mods.get("ctrl") else 0) | (8 if mods.get("shift") else 0)
    text = key_name.upper() if mods.get("shift") and len(key_name) == 1 else key_name
    for kind in ("rawKeyDown", "keyUp"):
        page.send("Input.dispatchKeyEvent", {"type": kind, "key": text, "code": code, "windowsVirtualKeyCode": vk,
                                             "nativeVirtualKeyCode": vk, "modifiers": modifiers})


def mouse_drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 5) -> None:
    page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": start[0], "y": start[1]})
    page.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": start[0], "y": start[1], "button": "left",
                                           "clickCount": 1, "buttons": 1})
    for i in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * i / steps
        y = start[1] + (end[1] - start[1]) * i / steps
        page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1})
    page.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": end[0], "y": end[1], "button": "left",
                                           "clickCount": 1, "buttons": 0})


def caption_of(page, name: str) -> str:
    return page.evaluate(f"hnDatasetEditor.current().caption({js(name)})")


def test_sidebar_tab_on_the_new_frontend_lists_dataset_folders(page, folder):
    if not page.evaluate("typeof app.extensionManager?.registerSidebarTab === 'function'"):
        pytest.skip("this frontend has no sidebar tabs (the pinned 2024 host); the node button is tested below")
    text = page.evaluate("""(async () => {
        const store = app.extensionManager.sidebarTab.value ?? app.extensionManager.sidebarTab;
        const tab = store.sidebarTabs.find((t) => t.id === 'hypernetwork-datasets');
        if (!tab) return null;
        const div = document.createElement('div');
        tab.render(div);
        for (let i = 0; i < 100 && !div.textContent.includes('(12)'); i++) await new Promise((r) => setTimeout(r, 100));
        return tab.title + ' | ' + div.textContent;
    })()""")
    assert text and text.startswith("Hypernetwork datasets") and f"{folder.name} (12)" in text


def test_edit_a_dataset_in_the_ui_then_train_data_follows(page, comfy_server, folder):
    # a Load Dataset node on the canvas with the folder; its button opens the editor
    assert page.evaluate(f"""(() => {{
        app.graph.clear();
        const node = LiteGraph.createNode('HypernetworkLoadDataset');
        app.graph.add(node);
        node.widgets.find((w) => w.name === 'directory').value = {js(folder.name)};
        const button = node.widgets.find((w) => w.name === 'hn_edit_dataset');
        button.callback();
        const saved = node.serialize().widgets_values;
        return saved.length === node.widgets.length - 1 && !saved.includes(null);
    }})()"""), "the button must not add a value to the saved widgets_values"
    page.wait_for("document.querySelectorAll('.hn-de-card').length === 12", timeout=30)
    assert page.evaluate("document.querySelector('.hn-de').dataset.folder") == folder.name
    counts = dict(page.evaluate("hnDatasetEditor.current().lastListing.tags"))
    assert counts["cat"] == 5 and counts["red hair"] == 5

    # filter: click the tag "cat" in the tag list
    page.evaluate("document.querySelector('.hn-de-tag[data-tag=\"cat\"]').click(), true")
    page.wait_for("document.querySelectorAll('.hn-de-card').length === 5")
    cat_cards = cards(page)
    assert cat_cards == ["img00.png", "img02.png", "img04.png", "img08.png", "img11.png"]

    # bulk replace "red hair" -> "crimson hair" on the filtered images: preview count, then apply
    page.evaluate("""(() => {
        const set = (sel, v) => { const e = document.querySelector(sel); e.value = v; e.dispatchEvent(new Event('change')); };
        set('.hn-de-bulk-kind', 'replace'); set('.hn-de-bulk-tag', 'red hair'); set('.hn-de-bulk-new', 'crimson hair');
        document.querySelector('.hn-de-bulk-preview').click(); return true; })()""")
    assert page.wait_for("(() => { const t = document.querySelector('.hn-de-bulk-result').textContent;"
                         " return t.includes('change') && t; })()") == "3 of 5 captions change"
    page.evaluate("document.querySelector('.hn-de-bulk-apply').click(), true")
    page.wait_for("document.querySelector('.hn-de-bulk-result').textContent.includes('changed')")
    assert caption_of(page, "img04.png") == "cat, (crimson hair:1.2)"
    assert caption_of(page, "img01.png") == "dog, red hair", "images outside the filter are not changed"

    # one image: select with the keyboard, add a tag with Enter, remove a tag with its ×
    page.evaluate("document.querySelector('.hn-de-card[data-name=\"img00.png\"]').click(), true")
    key(page, "ArrowRight")
    assert page.evaluate("hnDatasetEditor.current().selected") == "img02.png"
    page.evaluate("""(() => { const input = document.querySelector('.hn-de-add'); input.value = 'green eyes, smile';
        input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true})); return true; })()""")
    page.wait_for("hnDatasetEditor.current().caption('img02.png').endsWith('smile')")
    assert caption_of(page, "img02.png") == "cat, blue eyes, crimson hair, green eyes, smile"
    page.evaluate("[...document.querySelectorAll('.hn-de-detail-tags .hn-de-chip')]"
                  ".find((c) => c.firstChild.textContent === 'blue eyes').querySelector('.x').click(), true")
    assert caption_of(page, "img02.png") == "cat, crimson hair, green eyes, smile"
    key(page, "z", ctrl=True)
    assert caption_of(page, "img02.png") == "cat, blue eyes, crimson hair, green eyes, smile"
    key(page, "z", ctrl=True, shift=True)
    assert caption_of(page, "img02.png") == "cat, crimson hair, green eyes, smile"

    # exclude one image from training
    page.evaluate("document.querySelector('.hn-de-card[data-name=\"img08.png\"]').click(), true")
    page.evaluate("document.querySelector('.hn-de-exclude-image').click(), true")

    # crop img00 (96x64): a square box, dragged to the right edge with the mouse
    page.evaluate("document.querySelector('.hn-de-card[data-name=\"img00.png\"]').click(), true")
    page.wait_for("document.querySelector('.hn-de-crop img').naturalWidth > 0")
    page.evaluate("document.querySelector('.hn-de-crop-set').click(), true")
    box = page.wait_for("hnDatasetEditor.current().crops['img00.png']")
    assert box == pytest.approx([1 / 6, 0, 5 / 6, 1], abs=1e-3)
    rect = page.wait_for("(() => { const r = document.querySelector('.hn-de-box')?.getBoundingClientRect();"
                         " return r && {x: r.x, y: r.y, w: r.width, h: r.height}; })()")
    centre = (rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    mouse_drag(page, centre, (centre[0] + rect["w"], centre[1]))
    box = page.wait_for("(() => { const b = hnDatasetEditor.current().crops['img00.png']; return b[0] > 0.3 && b; })()")
    assert box == pytest.approx([1 / 3, 0, 1, 1], abs=2e-3)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(ARTIFACTS / "dataset_editor.png")
    publish(shot, DOCS / "dataset_editor.png", 1400)

    # Ctrl+S saves everything; then the files on disk
    dialogs = page.evaluate("document.querySelectorAll('.p-dialog, dialog[open]').length")
    key(page, "s", ctrl=True)
    page.wait_for("document.querySelector('.hn-de-status').textContent.includes('· saved')")
    assert page.evaluate("document.querySelectorAll('.p-dialog, dialog[open]').length") == dialogs, \
        "Ctrl+S in the editor must not reach the host's own save"
    assert not page.evaluate("hnDatasetEditor.current().dirty")
    assert (folder / "img04.txt").read_text(encoding="utf-8") == "cat, (crimson hair:1.2)"
    assert (folder / "img02.txt").read_text(encoding="utf-8") == "cat, crimson hair, green eyes, smile"
    assert (folder / "img01.txt").read_text(encoding="utf-8") == "dog, red hair"
    edits = json.loads((folder / ".hypernetwork_edits.json").read_text())
    assert edits["excluded"] == ["img08.png"]
    assert edits["crops"]["img00.png"] == pytest.approx([1 / 3, 0, 1, 1], abs=2e-3)
    page.evaluate("hnDatasetEditor.current().close(true), true")
    assert page.evaluate("document.querySelector('.hn-de') === null")

    # LoadDataset -> Preprocess (keep size, files written) uses the new captions, exclusion and crop
    output = comfy_server.layout.output / f"ui_edit_{uuid.uuid4().hex[:6]}"
    graph = Graph()
    load = graph.add("HypernetworkLoadDataset", directory=folder.name, recursive=False, caption_extension=".txt",
                     repeats_from_folder_names=False, on_bad_file="skip and report", missing_caption="empty",
                     preview_count=1)
    graph.add("HypernetworkPreprocess", dataset=[load, 0], width=64, height=64, mode="keep", flip=False,
              existing_caption="copy", caption_text="", output_directory=str(output), if_output_exists="refuse",
              workers=1, preview_count=1)
    comfy_server.run(graph.to_api())
    pngs = sorted(output.glob("*.png"))
    assert len(pngs) == 11 and not any(p.name.endswith("-img08.png") for p in pngs)
    first = next(p for p in pngs if p.name.endswith("-img00.png"))
    with Image.open(first) as img:
        assert img.size == (64, 64), "the 64x64 crop box of the 96x64 image"
    with Image.open(folder / "img00.png") as src, Image.open(first) as out:
        assert out.convert("RGB").getpixel((0, 0)) == src.convert("RGB").getpixel((32, 0))
    assert first.with_suffix(".txt").read_text(encoding="utf-8") == "cat, crimson hair, smile"


def test_conflicts_restore_points_reorder_and_raw_edit(page, comfy_server):
    folder = comfy_server.layout.input / f"ui_conflict_{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    for i in range(3):
        pattern_rgb(64, 64, seed=i).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a{i}, b{i}, c{i}", encoding="utf-8")
    page.evaluate(f"hnDatasetEditor.open({{folder: {js(folder.name)}}}), true")
    page.wait_for("document.querySelectorAll('.hn-de-card').length === 3")
    page.evaluate("document.querySelector('.hn-de-card[data-name=\"p0.png\"]').click(), true")

    # drag the third tag chip onto the first
    page.evaluate("""(() => {
        const chips = [...document.querySelectorAll('.hn-de-detail-tags .hn-de-chip')];
        const data = new DataTransfer();
        chips[2].dispatchEvent(new DragEvent('dragstart', {dataTransfer: data, bubbles: true}));
        chips[0].dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
        chips[0].dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        return true; })()""")
    assert caption_of(page, "p0.png") == "c0, a0, b0"

    # real typing in the add-tag field, then Enter (the editor's key handling must not eat the letters)
    page.evaluate("document.querySelector('.hn-de-add').focus(), true")
    for char in "typed":
        page.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": char, "text": char,
                                             "code": f"Key{char.upper()}", "windowsVirtualKeyCode": ord(char.upper())})
        page.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char, "code": f"Key{char.upper()}",
                                             "windowsVirtualKeyCode": ord(char.upper())})
    assert page.evaluate("document.querySelector('.hn-de-add').value") == "typed"
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter", "text": "\r",
                                         "windowsVirtualKeyCode": 13})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    assert caption_of(page, "p0.png") == "c0, a0, b0, typed"
    key(page, "z", ctrl=True)
    assert caption_of(page, "p0.png") == "c0, a0, b0"

    # the raw caption text of another image
    page.evaluate("""(() => { document.querySelector('.hn-de-card[data-name="p1.png"]').click();
        const raw = document.querySelector('.hn-de-raw'); raw.value = '  typed, by hand ';
        raw.dispatchEvent(new Event('change')); return true; })()""")
    assert caption_of(page, "p1.png") == "typed, by hand"

    # meanwhile another program rewrites p1's caption: saving asks instead of overwriting
    (folder / "p1.txt").write_text("changed elsewhere", encoding="utf-8")
    page.evaluate("hnDatasetEditor.current().save(), true")
    text = page.wait_for("document.querySelector('.hn-de-conflicts')?.textContent")
    assert "p1.png" in text and "changed elsewhere" in text and "p0.png" not in text
    assert (folder / "p0.txt").read_text(encoding="utf-8") == "a0, b0, c0", "nothing written on a conflict"
    page.evaluate("document.querySelector('.hn-de-overwrite').click(), true")
    page.wait_for("!hnDatasetEditor.current().dirty")
    assert (folder / "p1.txt").read_text(encoding="utf-8") == "typed, by hand"
    assert (folder / "p0.txt").read_text(encoding="utf-8") == "c0, a0, b0"

    # the restore point of that save puts both captions back
    page.evaluate("document.querySelector('.hn-de-head button:nth-of-type(4)').click(), true")
    page.wait_for("document.querySelectorAll('.hn-de-restore button[data-id]').length === 1")
    page.evaluate("document.querySelector('.hn-de-restore button[data-id]').click(), true")
    page.wait_for("document.querySelector('.hn-de-status').textContent.includes('restored')")
    assert (folder / "p1.txt").read_text(encoding="utf-8") == "changed elsewhere"
    assert (folder / "p0.txt").read_text(encoding="utf-8") == "a0, b0, c0"
    page.wait_for("hnDatasetEditor.current().caption('p0.png') === 'a0, b0, c0'")

    # ctrl+click selects images: tag counts of the selection, bulk edits on it only
    page.evaluate("""(() => { for (const n of ['p0.png', 'p2.png']) document.querySelector(`.hn-de-card[data-name="${n}"]`)
        .dispatchEvent(new MouseEvent('click', {bubbles: true, ctrlKey: true})); return true; })()""")
    page.wait_for("document.querySelectorAll('.hn-de-card.picked').length === 2 && "
                  "hnDatasetEditor.current().lastListing.selection_tags")
    assert dict(page.evaluate("hnDatasetEditor.current().lastListing.selection_tags")) == \
        {"a0": 1, "b0": 1, "c0": 1, "a2": 1, "b2": 1, "c2": 1}
    page.evaluate("""(() => {
        const set = (sel, v) => { const e = document.querySelector(sel); e.value = v; e.dispatchEvent(new Event('change')); };
        set('.hn-de-bulk-kind', 'add'); set('.hn-de-bulk-tag', 'picked'); set('.hn-de-bulk-pos', 'front');
        document.querySelector('.hn-de-bulk-apply').click(); return true; })()""")
    page.wait_for("hnDatasetEditor.current().caption('p2.png') === 'picked, a2, b2, c2'")
    assert caption_of(page, "p0.png") == "picked, a0, b0, c0"
    assert caption_of(page, "p1.png") == "changed elsewhere"
    page.evaluate("hnDatasetEditor.current().close(true), true")


def test_preprocess_and_tagger_buttons_open_the_upstream_folder(page, folder):
    opened = page.evaluate(f"""(() => {{
        app.graph.clear();
        const load = LiteGraph.createNode('HypernetworkLoadDataset');
        const prep = LiteGraph.createNode('HypernetworkPreprocess');
        const tag = LiteGraph.createNode('HypernetworkWD14Tag');
        for (const n of [load, prep, tag]) app.graph.add(n);
        load.widgets.find((w) => w.name === 'directory').value = {js(folder.name)};
        load.connect(0, prep, prep.inputs.findIndex((i) => i.name === 'dataset'));
        prep.connect(0, tag, tag.inputs.findIndex((i) => i.name === 'dataset'));
        const folders = [];
        for (const node of [prep, tag]) {{
            node.widgets.find((w) => w.name === 'hn_edit_dataset').callback();
            folders.push(document.querySelector('.hn-de')?.dataset.folder);
            hnDatasetEditor.current().close(true);
        }}
        return folders;
    }})()""")
    assert opened == [folder.name, folder.name]


def test_a_broken_image_is_labelled_broken(page, comfy_server):
    folder = comfy_server.layout.input / f"ui_broken_{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    pattern_rgb(64, 64, seed=1).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not an image at all")
    page.evaluate(f"hnDatasetEditor.open({{folder: {js(folder.name)}}}), true")
    page.wait_for("document.querySelectorAll('.hn-de-card').length === 2")
    label = page.wait_for("document.querySelector('.hn-de-card.broken .hn-de-broken')?.title && "
                          "document.querySelector('.hn-de-card.broken').textContent")
    assert label.startswith("broken image: bad.png") and "bad.png" in label
    assert page.evaluate("[...document.querySelectorAll('.hn-de-card.broken')].map((c) => c.dataset.name)") == \
        ["bad.png"]
    assert page.evaluate("document.querySelector('.hn-de-card[data-name=\"good.png\"] img').naturalWidth") > 0
    # the detail panel of the broken image says so too, instead of an empty crop area
    page.evaluate("document.querySelector('.hn-de-card[data-name=\"bad.png\"]').click(), true")
    assert page.wait_for("document.querySelector('.hn-de-crop .hn-de-broken')?.textContent ?? false") \
        .startswith("broken image: bad.png")
    page.evaluate("hnDatasetEditor.current().close(true), true")


def test_sidebar_wraps_long_allowed_folder_paths(page, comfy_server, folder):
    result = page.evaluate("""(async () => {
        const div = document.createElement('div');
        div.style.width = '200px';
        document.body.append(div);
        await hnDatasetEditor.sidebar(div);
        const out = {text: div.textContent, scroll: div.scrollWidth, width: div.clientWidth,
                     roots: [...div.querySelectorAll('.hn-de-roots li')].map((li) => li.textContent)};
        div.remove();
        return out;
    })()""")
    [root] = [r for r in result["roots"] if r.rstrip("/").endswith("/" + comfy_server.layout.input.name)]
    assert len(root) > 40, "the test needs a path longer than the panel is wide"
    assert result["scroll"] <= result["width"], "a long path runs off the side panel"
    assert f"{folder.name} (12)" in result["text"]


def test_saved_workflows_old_caption_values_show_as_todays(page):
    renamed = [("HypernetworkPreprocess", "existing_caption", LEGACY_CAPTION_ACTIONS),
               ("HypernetworkWD14Tag", "write_captions", LEGACY_CAPTION_MODES)]
    cases = [[node, name, old] for node, name, legacy in renamed for old in legacy]
    shown = page.evaluate(f"""(() => {{
        app.graph.clear();
        const shown = [];
        for (const [type, input, old] of {js(cases)}) {{
            const node = LiteGraph.createNode(type);
            app.graph.add(node);
            const data = node.serialize();
            data.widgets_values[node.widgets.findIndex((w) => w.name === input)] = old;
            node.configure(data);
            shown.push(node.widgets.find((w) => w.name === input).value);
        }}
        app.graph.clear();
        return shown;
    }})()""")
    assert len(cases) == 4
    assert shown == [legacy[old] for _, _, legacy in renamed for old in legacy]
