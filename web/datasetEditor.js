// Dataset editor extension: a full-window overlay to curate a training folder's images and captions
// (tags, filters, bulk edits, exclusions, crop boxes, undo/redo, restore points). Opened from an
// "Edit dataset…" button on Load Dataset / Preprocess / WD14 Tagger, and from a sidebar tab on the
// new frontend. The editor itself is in datasetEditor/ (editor.js and one module per panel).
import { app } from "../../scripts/app.js";
import { currentEditor, openDatasetEditor } from "./datasetEditor/editor.js";
import { editorOptionsFor } from "./datasetEditor/graphSource.js";
import { renderSidebar } from "./datasetEditor/sidebar.js";
import { ensureStyle } from "./datasetEditor/dom.js";
import { splitTags } from "./datasetEditor/tags.js";
import { chainMethod } from "./hn_events.js";

const BUTTON = "hn_edit_dataset";
const NODE_TYPES = ["HypernetworkLoadDataset", "HypernetworkPreprocess", "HypernetworkWD14Tag"];

// The host's shortcuts (Ctrl+S saves the workflow, Ctrl+Z undoes graph edits, q/h/r toggle panels)
// listen on window in the capture phase. This listener is added when the module is imported, before
// the host's extensions run init(), so while the editor is open it sees keys first, handles them
// and keeps them from the host. Typing still works: default actions are not prevented.
window.addEventListener("keydown", (event) => {
	const editor = currentEditor();
	if (!editor?.root?.isConnected) return;
	editor.keydown(event);
	event.stopImmediatePropagation();
}, true);

function openFor(node) {
	const options = editorOptionsFor(node);
	if (!options) {
		window.alert("Set the Load Dataset node's directory first (and connect it to this node).");
		return null;
	}
	return openDatasetEditor(options);
}

app.registerExtension({
	name: "hypernetwork.datasetEditor",
	async setup() {
		ensureStyle(); // loaded before the editor first opens, so it never shows unstyled
		window.hnDatasetEditor = { open: openDatasetEditor, current: currentEditor, splitTags, sidebar: renderSidebar };
		const manager = app.extensionManager;
		if (typeof manager?.registerSidebarTab === "function") {
			manager.registerSidebarTab({
				id: "hypernetwork-datasets", icon: "pi pi-images", title: "Hypernetwork datasets",
				tooltip: "Hypernetwork datasets: edit captions, crops and exclusions", type: "custom",
				render: (element) => renderSidebar(element),
			});
		}
	},
	async beforeRegisterNodeDef(nodeType, nodeData) {
		if (!NODE_TYPES.includes(nodeData.name)) return;
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			const button = this.addWidget("button", "Edit dataset…", null, () => openFor(this));
			button.name = BUTTON;
			button.label = "Edit dataset…";
			button.serialize = false;
			button.options = { ...(button.options ?? {}), serialize: false };
		});
		// the button holds no value: keep it out of the saved widgets_values (positions matter there)
		chainMethod(nodeType.prototype, "onSerialize", function (data) {
			const index = this.widgets?.findIndex((w) => w.name === BUTTON) ?? -1;
			const values = data?.widgets_values;
			if (index < 0 || !Array.isArray(values) || values.length !== this.widgets.length) return;
			values.splice(index, 1);
		});
	},
});
