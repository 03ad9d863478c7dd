// The dataset editor's right panel for the selected image: its crop box, its tags as chips (drag to
// reorder, × to remove, a field to add more with suggestions), the raw caption, and "exclude".
import { cropEditor } from "./cropBox.js";
import { el } from "./dom.js";
import { splitTags } from "./tags.js";

const MAX_SUGGESTIONS = 40;
const DRAG_TYPE = "text/x-hn-tag";

/** Enter in the add-tag field: its new tags go to the end of the selected image's caption. */
export function addTagsFromInput(editor, input) {
	const name = editor.selected;
	if (!name || !input.value.trim()) return;
	const tags = splitTags(editor.caption(name));
	const have = new Set(tags);
	const extra = splitTags(input.value).filter((t) => !have.has(t));
	input.value = "";
	if (extra.length) editor.setTags(name, [...tags, ...extra], "add tag");
	editor.detail.querySelector(".hn-de-add")?.focus();
}

function reorderTags(editor, name, from, to) {
	const tags = splitTags(editor.caption(name));
	if (!(from >= 0 && from < tags.length) || from === to) return;
	const [moved] = tags.splice(from, 1);
	tags.splice(to, 0, moved);
	editor.setTags(name, tags, "reorder tags");
}

function tagChips(editor, name) {
	const tags = splitTags(editor.caption(name));
	const chips = el("div", { class: "hn-de-chips hn-de-detail-tags" });
	tags.forEach((tag, index) => {
		const remove = () => editor.setTags(name, tags.filter((_, i) => i !== index), "remove tag");
		const chip = el("span", { class: "hn-de-chip", draggable: "true", "data-index": String(index) }, tag,
			el("span", { class: "x", title: "remove", onclick: remove }, "×"));
		chip.addEventListener("dragstart", (e) => e.dataTransfer.setData(DRAG_TYPE, String(index)));
		chip.addEventListener("dragover", (e) => e.preventDefault());
		chip.addEventListener("drop", (e) => {
			e.preventDefault();
			reorderTags(editor, name, Number(e.dataTransfer.getData(DRAG_TYPE)), index);
		});
		chips.append(chip);
	});
	return chips;
}

/** The add-tag field (Enter adds: see the editor's keydown) with suggestions from the dataset's
 * tags and the tagger's vocabulary. */
function addField(editor) {
	const datalist = el("datalist", { id: "hn-de-suggest" });
	const add = el("input", { class: "hn-de-add", placeholder: "add tag, Enter", list: "hn-de-suggest" });
	add.addEventListener("input", () => {
		const needle = add.value.trim().toLowerCase();
		if (!needle) return datalist.replaceChildren();
		const own = (editor.lastListing?.tags ?? []).map(([t]) => t);
		const seen = new Set();
		const hits = [...own, ...editor.vocabulary]
			.filter((t) => t.toLowerCase().includes(needle) && !seen.has(t) && seen.add(t)).slice(0, MAX_SUGGESTIONS);
		datalist.replaceChildren(...hits.map((t) => el("option", { value: t })));
	});
	return [add, datalist];
}

/** Redraw the panel, only when what it shows changed: a list answer arriving must not reset a drag
 * or a half-typed tag. */
export function renderDetail(editor) {
	const name = editor.selected;
	const signature = JSON.stringify([name, name && editor.caption(name), editor.crops[name] ?? null,
		editor.excluded.has(name)]);
	if (signature === editor.detailSignature) return;
	editor.detailSignature = signature;
	if (!name) {
		editor.detail.replaceChildren(el("i", {}, "No image selected."));
		return;
	}
	const raw = el("textarea", { class: "hn-de-raw" }, editor.caption(name));
	raw.addEventListener("change", () => editor.setCaption(name, raw.value.trim(), "edit caption"));
	const excluded = el("input", { type: "checkbox", class: "hn-de-exclude-image", checked: editor.excluded.has(name),
		onchange: (e) => editor.commit({ excluded: { [name]: [editor.excluded.has(name), e.target.checked] } },
			"exclude") });
	editor.detail.replaceChildren(el("b", {}, name), cropEditor(editor, name),
		el("div", { class: "hn-de-section" }, el("b", {}, "Tags (drag to reorder)"), tagChips(editor, name),
			...addField(editor)),
		el("div", { class: "hn-de-section" }, el("b", {}, "Caption"), raw),
		el("label", { class: "hn-de-row" }, excluded, "exclude from training (kept on disk)"));
}
