// Going back to what is on disk: the restore points of earlier saves (one per save, newest first),
// and the dialog when a save finds files changed by another tab or program since they were loaded.
import { restore, restorePoints } from "./api.js";
import { el } from "./dom.js";

function describe(point) {
	const when = new Date(point.created * 1000).toLocaleString();
	const edits = point.edits ? " + exclusions/crops" : "";
	return `${when} · ${point.label} · ${point.captions} caption(s)${edits}`;
}

/** The restore points dialog; restoring one reloads the editor from disk. */
export async function showRestorePoints(editor) {
	const { points } = await restorePoints(editor.folder);
	const modal = el("div", { class: "hn-de-modal hn-de-restore" });
	const row = (point) => el("div", { class: "hn-de-row" }, describe(point),
		el("button", { "data-id": point.id, onclick: async () => {
			if (editor.dirty && !window.confirm("Restoring drops your unsaved changes. Continue?")) return;
			await restore(editor.folder, point.id);
			modal.remove();
			editor.resetLocal();
			editor.status(`restored ${point.id}`);
		} }, "Restore"));
	modal.append(el("b", {}, "Restore points (one per save; newest first)"),
		...(points.length ? points.map(row) : [el("i", {}, "No saves yet.")]),
		el("button", { onclick: () => modal.remove() }, "Close"));
	editor.root.append(modal);
}

function conflictLine(conflict) {
	const what = conflict.kind === "caption"
		? ` — on disk now: “${conflict.current_text ?? "(no file)"}”; yours: “${conflict.your_text}”`
		: " — exclusions/crops";
	return el("div", {}, el("b", {}, conflict.name), what);
}

/** A save refused with 409: overwrite with the editor's version, or drop it and reload. */
export function showConflicts(editor, conflicts, message) {
	const modal = el("div", { class: "hn-de-modal hn-de-conflicts" });
	const close = (then) => () => {
		modal.remove();
		then?.();
	};
	modal.append(el("b", {}, message),
		el("div", {}, "These files were changed on disk (another tab or program) after you loaded them:"),
		...conflicts.map(conflictLine),
		el("div", { class: "hn-de-row" },
			el("button", { class: "hn-de-overwrite", onclick: close(() => editor.save({ force: true })) },
				"Overwrite with mine"),
			el("button", { class: "hn-de-reload", onclick: close(() => editor.resetLocal()) }, "Discard mine, reload"),
			el("button", { onclick: close() }, "Cancel")));
	editor.root.append(modal);
}
