// Train Hypernetwork: after a page reload the chart, status and preview come back. The old
// frontend restores the workflow but not node outputs, so the newest output of each training
// node is read from the server's history and handed to the node as if it had just executed.
// Only on page load: a workflow loaded later starts clean, as the host does for its own nodes.
import { app } from "../../scripts/app.js";
import { lastOutputOf } from "./hn_history.js";

const NODE_TYPE = "TrainHypernetwork";

export async function restoreNode(node) {
	const key = String(node.id);
	if (app.nodeOutputs?.[key]) return false;
	const output = await lastOutputOf(node.id, NODE_TYPE, "loss");
	if (!output || app.nodeOutputs?.[key] || !node.graph) return false;
	app.nodeOutputs[key] = output;
	node.onExecuted?.(output);
	app.graph.setDirtyCanvas(true, false);
	return true;
}

app.registerExtension({
	name: "hypernetwork.trainRestore",
	async setup() {
		const nodes = (app.graph?._nodes ?? []).filter((node) => node.type === NODE_TYPE);
		await Promise.all(nodes.map((node) => restoreNode(node).catch((error) =>
			console.warn("hypernetwork.trainRestore: could not restore", node.id, error))));
	},
});
