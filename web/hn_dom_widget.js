// The one way the pack puts a display element on a node (Apply file info, Train status, loss
// chart, preview): a DOM widget that holds no value (never saved in the workflow), stays visible
// when zoomed out and sits in the pack's widget order, set up the same on the old (2024) and new
// (1.x) frontends. A helper module (it registers no extension).
import { keepPackWidgetsUnsaved, orderPackWidgets } from "./hn_events.js";

/**
 * `beforeRegisterNodeDef` for an extension of one node type: runs `setup(nodeType)` for that
 * type only, after keeping the pack's display widgets out of the node's saved values.
 */
export function forPackNode(nodeName, setup) {
	return async function beforeRegisterNodeDef(nodeType, nodeData) {
		if (nodeData.name !== nodeName) return;
		keepPackWidgetsUnsaved(nodeType);
		setup(nodeType, nodeData);
	};
}

/** A `<div>` with the pack's class name and inline `style`. */
export function packElement(className, style = {}) {
	const element = document.createElement("div");
	element.className = className;
	Object.assign(element.style, style);
	return element;
}

/** The look of the pack's text boxes (file info, training status); `extra` adds or overrides. */
export function textBoxStyle(extra = {}) {
	return {
		font: "11px monospace",
		color: "var(--input-text, #ddd)",
		background: "var(--comfy-input-bg, #222)",
		borderRadius: "4px",
		boxSizing: "border-box",
		...extra,
	};
}

/**
 * Add `element` to `node` as display widget `name` of widget type `type`. `sizing`: the host's
 * size callbacks (getMinHeight, getHeight, getMaxHeight) and onDraw. Returns the widget.
 */
export function addPackWidget(node, name, type, element, sizing = {}) {
	const widget = node.addDOMWidget(name, type, element, { serialize: false, hideOnZoom: false, ...sizing });
	widget.serializeValue = () => undefined;
	orderPackWidgets(node);
	return widget;
}
