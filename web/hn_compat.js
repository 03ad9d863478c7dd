// The one place that knows how the old (2024, app.js) and new (1.x, Vue) ComfyUI frontends
// differ in what the pack uses: where the graph lives, how its nodes are listed, and how an
// event's node id reads. A helper module (it registers no extension).
import { app } from "../../scripts/app.js";

/** The workflow's top-level graph: `app.rootGraph` on the new frontend, `app.graph` on the old. */
export function rootGraph() {
	return app.rootGraph ?? app.graph;
}

/** The nodes of `graph` (default: the root graph): `graph.nodes` where public, else `_nodes`. */
export function graphNodes(graph = rootGraph()) {
	return graph?.nodes ?? graph?._nodes ?? [];
}

/** The root graph's nodes of one type. */
export function nodesOfType(type, graph = rootGraph()) {
	return graphNodes(graph).filter((node) => node.type === type);
}

/** Ask the canvas to redraw the nodes (both frontends). */
export function redraw() {
	(app.canvas ?? rootGraph())?.setDirty?.(true, false);
	rootGraph()?.setDirtyCanvas?.(true, false);
}

/**
 * Whether the id in an event (the prompt's node id; inside a subgraph an execution path such as
 * `12:5`, whose last part is the node's own id) addresses `node`.
 */
export function isEventFor(node, eventNodeId) {
	if (eventNodeId == null || node?.id == null) return false;
	const id = String(eventNodeId);
	if (id === String(node.id)) return true;
	if (!id.includes(":")) return false;
	// a path: only a node inside a subgraph (not one in the root graph) may match its last part
	return node.graph !== rootGraph() && id.split(":").pop() === String(node.id);
}
