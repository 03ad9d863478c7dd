// Which dataset folder a node on the canvas works on: its own Load Dataset's widgets, or those of
// the Load Dataset upstream through `dataset` inputs (Preprocess, WD14 Tagger).

function widgetValue(node, name) {
	return node?.widgets?.find((w) => w.name === name)?.value;
}

/** The Load Dataset node feeding `node` (itself, or upstream through `dataset` inputs). */
export function sourceLoadNode(node, seen = new Set()) {
	if (!node || seen.has(node.id)) return null;
	seen.add(node.id);
	if (node.type === "HypernetworkLoadDataset") return node;
	const input = node.inputs?.find((i) => i.name === "dataset");
	if (input?.link == null) return null;
	const link = node.graph?.links?.[input.link] ?? node.graph?.links?.get?.(input.link);
	return link ? sourceLoadNode(node.graph.getNodeById(link.origin_id), seen) : null;
}

/** The editor options ({folder, captionExtension, recursive}) for `node`, or null without a folder. */
export function editorOptionsFor(node) {
	const load = sourceLoadNode(node);
	if (!load) return null;
	const folder = widgetValue(load, "directory");
	if (!folder) return null;
	return { folder, captionExtension: widgetValue(load, "caption_extension") || ".txt",
		recursive: !!widgetValue(load, "recursive") };
}
