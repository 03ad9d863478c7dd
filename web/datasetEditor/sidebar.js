// The "Hypernetwork datasets" sidebar tab (new frontend): open a folder by name, or pick one of the
// input folder's image folders; lists the folders the editor may open, long paths wrapped.
import { folders } from "./api.js";
import { el, ensureStyle } from "./dom.js";
import { openDatasetEditor } from "./editor.js";

function rootsNote(data) {
	return el("small", { class: "hn-de-roots" }, "Allowed folders:",
		el("ul", {}, data.roots.map((root) => el("li", { title: root }, el("code", {}, root)))),
		"More in ", el("code", { title: data.config_file }, data.config_file), ".");
}

/** Fill the tab's `element`. */
export function renderSidebar(element) {
	ensureStyle();
	const input = el("input", { placeholder: "folder (relative to input, absolute, or ~/...)" });
	const list = el("div", { class: "hn-de-sidebar-list" });
	const refresh = async () => {
		try {
			const data = await folders();
			list.replaceChildren(...data.folders.map((f) => el("button", { title: f.folder,
				onclick: () => openDatasetEditor({ folder: f.folder }) }, `${f.folder} (${f.images})`)),
			rootsNote(data));
		} catch (error) {
			list.replaceChildren(error.message);
		}
	};
	element.replaceChildren(el("div", { class: "hn-de-sidebar" },
		el("b", {}, "Hypernetwork datasets"), input,
		el("button", { onclick: () => input.value && openDatasetEditor({ folder: input.value }) }, "Edit dataset…"),
		el("button", { onclick: refresh }, "Refresh"), list));
	return refresh();
}
