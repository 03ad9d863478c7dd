// Combo values renamed after release (nodes/legacy_values.py): a saved workflow's old value is shown,
// and saved again, as today's. The server accepts the old values too, for API prompts.
import { app } from "../../scripts/app.js";
import { chainMethod } from "./hn_events.js";

export const RENAMED = {
	HypernetworkPreprocess: { existing_caption: { prepend: "existing_first", append: "new_first" } },
	HypernetworkWD14Tag: { write_captions: { append: "existing_first", prepend: "new_first" } },
};

app.registerExtension({
	name: "hypernetwork.renamedValues",
	async beforeRegisterNodeDef(nodeType, nodeData) {
		const renames = RENAMED[nodeData.name];
		if (!renames) return;
		chainMethod(nodeType.prototype, "onConfigure", function () {
			for (const [input, map] of Object.entries(renames)) {
				const widget = this.widgets?.find((w) => w.name === input);
				if (widget && Object.hasOwn(map, widget.value)) widget.value = map[widget.value];
			}
		});
	},
});
