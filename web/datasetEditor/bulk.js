// Bulk operations of the dataset editor: add / remove / replace / dedupe / sort tags on the picked
// images, or else on every image the filter matches. The server computes the new captions (a dry
// run: nothing is written); they become one undoable change, saved with the rest.
import { bulkEdit } from "./api.js";
import { el } from "./dom.js";

const KINDS = ["add", "remove", "replace", "dedupe", "sort"];

/** The server's preview of `op`: {captions, before, versions, changed, considered}. */
export function previewBulk(editor, op) {
	const target = editor.picked.size ? { names: [...editor.picked] } : { filter: editor.filter };
	return bulkEdit({ ...editor.requestBase(), op, ...target, overrides: editor.overrides(), dry_run: true,
		excluded_names: [...editor.excluded] });
}

/** Apply `op` as one undoable change; returns how many captions changed. */
export async function applyBulk(editor, op) {
	const preview = await previewBulk(editor, op);
	const captions = {};
	for (const [name, text] of Object.entries(preview.captions)) {
		if (!editor.items.has(name)) {
			editor.items.set(name, { caption: preview.before[name], version: preview.versions[name], has_caption: true });
		}
		captions[name] = [preview.before[name], text];
	}
	if (!Object.keys(captions).length) {
		editor.status("no caption changes");
		return 0;
	}
	editor.commit({ captions, versions: preview.versions }, `bulk ${op.kind}`);
	return preview.changed;
}

function title(editor) {
	return editor.picked.size ? `Bulk edit on the ${editor.picked.size} selected images`
		: `Bulk edit on the ${editor.matched} filtered images`;
}

function build(editor) {
	const kind = el("select", { class: "hn-de-bulk-kind" }, KINDS.map((k) => el("option", { value: k }, k)));
	const tag = el("input", { class: "hn-de-bulk-tag", placeholder: "tag (or regex)" });
	const replacement = el("input", { class: "hn-de-bulk-new", placeholder: "replace with" });
	const position = el("select", { class: "hn-de-bulk-pos" },
		el("option", { value: "back" }, "at end"), el("option", { value: "front" }, "at front"));
	const regex = el("input", { type: "checkbox", class: "hn-de-bulk-regex" });
	const result = el("span", { class: "hn-de-bulk-result" });
	const op = () => ({ kind: kind.value, tag: tag.value, new: replacement.value, position: position.value,
		regex: regex.checked });
	const report = (work) => async () => {
		try {
			result.textContent = await work();
		} catch (error) {
			result.textContent = error.message;
		}
	};
	const preview = el("button", { class: "hn-de-bulk-preview", onclick: report(async () => {
		const answer = await previewBulk(editor, op());
		return `${answer.changed} of ${answer.considered} captions change`;
	}) }, "Preview");
	const apply = el("button", { class: "hn-de-bulk-apply", onclick: report(async () => {
		const changed = await applyBulk(editor, op());
		return `${changed} captions changed (unsaved)`;
	}) }, "Apply");
	const heading = el("b", { class: "hn-de-bulk-title" }, title(editor));
	const unpick = el("button", { class: "hn-de-unpick", hidden: !editor.picked.size,
		onclick: () => { editor.picked.clear(); editor.refresh(); } }, "Clear selection");
	return el("div", { class: "hn-de-section hn-de-bulk" }, heading, unpick,
		el("div", { class: "hn-de-row" }, kind, position), tag, replacement,
		el("label", { class: "hn-de-row" }, regex, "regular expression"),
		el("div", { class: "hn-de-row" }, preview, apply), result);
}

/** The bulk panel, built once per editor so its fields survive redraws; its title follows the target. */
export function bulkPanel(editor) {
	editor.bulkEl ??= build(editor);
	editor.bulkEl.querySelector(".hn-de-bulk-title").textContent = title(editor);
	editor.bulkEl.querySelector(".hn-de-unpick").hidden = !editor.picked.size;
	return editor.bulkEl;
}
