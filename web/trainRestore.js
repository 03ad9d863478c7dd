// Train Hypernetwork: the chart, status and preview come back whenever a graph is shown again:
// after a page reload, a workflow (re)loaded, or a workflow tab switched back to. Neither
// frontend keeps node outputs across these, so the newest output of each training node is read
// from the server's history and handed to the node as if it had just executed.
import { app } from "../../scripts/app.js";
import { lastOutputOf } from "./hn_history.js";
import { nodesOfType, redraw } from "./hn_compat.js";

const NODE_TYPE = "TrainHypernetwork";

/** Show the node's newest output from the history; false when there is none or it has one. */
export async function restoreNode(node) {
	if (node.hnTrainStatus?.hasData?.()) return false; // it has trained in this graph already
	const output = await lastOutputOf(node.id, NODE_TYPE, "loss");
	if (!output || !node.graph || node.hnTrainStatus?.hasData?.()) return false;
	node.onExecuted?.(output);
	redraw();
	return true;
}

export async function restoreAll() {
	const nodes = nodesOfType(NODE_TYPE);
	const restored = await Promise.all(nodes.map((node) => restoreNode(node).catch((error) => {
		console.warn("hypernetwork.trainRestore: could not restore", node.id, error);
		return false;
	})));
	return restored.filter(Boolean).length;
}

app.registerExtension({
	name: "hypernetwork.trainRestore",
	// Both frontends call this after every graph load: page load (the new frontend configures the
	// saved workflow only after `setup`), loadGraphData, and (new frontend) a workflow tab switch.
	async afterConfigureGraph() {
		await restoreAll();
	},
	// Fallback for a frontend that configured its graph before this extension registered.
	async setup() {
		await restoreAll();
	},
});
