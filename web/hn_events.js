// Per-node websocket listeners for the pack's `hypernetwork.*` events, removed with their node.
// A helper module (it registers no extension); the feature modules import it.
import { api } from "../../scripts/api.js";
import { isEventFor } from "./hn_compat.js";

const byNode = new Map(); // node -> [{ type, listener }]

/**
 * Call `handler(detail)` for `type` events addressed to `node`: detail.node is the id the server
 * executed the node under (its execution/display id), never the host's "last executing node".
 */
export function listenForNode(node, type, handler) {
	const listener = ({ detail }) => {
		if (detail && isEventFor(node, detail.node)) handler(detail);
	};
	api.addEventListener(type, listener);
	if (!byNode.has(node)) {
		byNode.set(node, []);
		onNodeRemoved(node, () => removeNodeListeners(node));
	}
	byNode.get(node).push({ type, listener });
}

export function removeNodeListeners(node) {
	for (const { type, listener } of byNode.get(node) ?? []) {
		api.removeEventListener(type, listener);
	}
	byNode.delete(node);
}

/** Live listeners of one node, or of all nodes (for tests and debugging). */
export function listenerCount(node) {
	if (node) return byNode.get(node)?.length ?? 0;
	let total = 0;
	for (const entries of byNode.values()) total += entries.length;
	return total;
}

/** Run `callback` when litegraph removes `node` from its graph (chained, never replacing others). */
export function onNodeRemoved(node, callback) {
	const previous = node.onRemoved;
	node.onRemoved = function () {
		try {
			callback.call(this);
		} finally {
			previous?.apply(this, arguments);
		}
	};
}

/** Chain `method` on a node prototype: our function runs after the original one. */
export function chainMethod(prototype, method, after) {
	const original = prototype[method];
	prototype[method] = function () {
		const result = original?.apply(this, arguments);
		after.apply(this, arguments);
		return result;
	};
}

export const TRAIN_EVENTS = [
	"hypernetwork.train.progress",
	"hypernetwork.train.preview",
	"hypernetwork.train.checkpoint",
	"hypernetwork.train.event",
	"hypernetwork.train.validation",
];

// The host's websocket client warns about event types nobody listens to; one app-wide no-op
// listener per type (added once, when this module is first imported) keeps the console quiet
// while no training node is on the graph.
for (const type of TRAIN_EVENTS) api.addEventListener(type, () => {});

// The pack's display widgets sit after all input widgets (whose order `widgets_values` relies
// on), in this order whatever order the extensions load in.
const WIDGET_ORDER = ["hn_train_status", "hn_loss_chart", "hn_train_preview", "hn_file_info"];

/** Re-sort the pack's trailing display widgets of `node` into WIDGET_ORDER. */
export function orderPackWidgets(node) {
	const widgets = node.widgets ?? [];
	const first = widgets.findIndex((w) => WIDGET_ORDER.includes(w.name));
	if (first < 0) return;
	const tail = widgets.slice(first);
	if (!tail.every((w) => WIDGET_ORDER.includes(w.name))) return; // something else was added after ours
	tail.sort((a, b) => WIDGET_ORDER.indexOf(a.name) - WIDGET_ORDER.indexOf(b.name));
	widgets.splice(first, tail.length, ...tail);
}

/**
 * Leave the display widgets out of a saved node's `widgets_values`: they hold no value, and a
 * trailing null there would land on an input added to the node in a later version.
 * Idempotent, so every feature module may install it.
 */
export function keepPackWidgetsUnsaved(nodeType) {
	chainMethod(nodeType.prototype, "onSerialize", function (data) {
		const values = data?.widgets_values;
		if (!Array.isArray(values)) return;
		let keep = this.widgets?.length ?? 0;
		while (keep > 0 && WIDGET_ORDER.includes(this.widgets[keep - 1].name)) keep--;
		if (values.length > keep) values.length = keep;
	});
}
