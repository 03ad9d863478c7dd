// Train Hypernetwork: workflows saved before its rarely changed inputs moved to the options
// nodes (Hypernetwork Training Options / Preview Options) still load and run. Before the graph
// is configured, a Train node whose `widgets_values` has a legacy length is rewritten to the
// current layout; its moved values go to new options nodes (only those with a value differing
// from the default), chained into the Train node's `options` input.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const TRAIN = "TrainHypernetwork";
const TRAINING_OPTIONS = "HypernetworkTrainingOptions";
const PREVIEW_OPTIONS = "HypernetworkPreviewOptions";
const OPTIONS_TYPE = "HN_TRAIN_OPTIONS";
const CONTROL = "control_after_generate";
const CONTROL_VALUES = ["fixed", "increment", "decrement", "randomize"];

const LAYOUT_ROUTE = "/hypernetwork/train_layout";

let layoutsPromise = null;
/** Widget layouts of earlier versions (from the settings declaration, hypernet/train/settings.py),
 * by `widgets_values` length (each is unique). Fetched once, when a Train node first loads. */
export function legacyLayouts() {
	layoutsPromise ??= api.fetchApi(LAYOUT_ROUTE)
		.then((response) => (response.ok ? response.json() : Promise.reject(new Error(`${LAYOUT_ROUTE}: ${response.status}`))))
		.then((document) => document.legacy_layouts)
		.catch((error) => {
			layoutsPromise = null; // try again with the next workflow
			throw error;
		});
	return layoutsPromise;
}

const WIDGET_TYPES = new Set(["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]);

function nodeDef(type) {
	return globalThis.LiteGraph?.registered_node_types?.[type]?.nodeData ?? null;
}

/** [name, spec] of a node type's widget inputs, in the order its widgets are created. */
function widgetInputs(type) {
	const def = nodeDef(type);
	if (!def) return null;
	const inputs = { ...(def.input?.required ?? {}), ...(def.input?.optional ?? {}) };
	return Object.entries(inputs).filter(([, spec]) =>
		!spec[1]?.forceInput && (Array.isArray(spec[0]) || WIDGET_TYPES.has(spec[0])));
}

/** The widget names of `type` as saved in `widgets_values` (a seed's control value after it). */
export function widgetLayout(type) {
	const inputs = widgetInputs(type);
	if (!inputs) return null;
	const names = [];
	for (const [name, spec] of inputs) {
		names.push(name);
		const control = spec[1]?.control_after_generate;
		if (control === undefined ? (spec[0] === "INT" && ["seed", "noise_seed"].includes(name)) : control) {
			names.push(CONTROL);
		}
	}
	return names;
}

function defaults(type) {
	return Object.fromEntries((widgetInputs(type) ?? []).map(([name, spec]) =>
		[name, spec[1]?.default ?? (Array.isArray(spec[0]) ? spec[0][0] : undefined)]));
}

function legacyLayoutOf(node, layouts) {
	const values = node.widgets_values;
	if (node.type !== TRAIN || !Array.isArray(values)) return null;
	const layout = layouts.find((l) => l.widgets.length === values.length);
	if (!layout) return null;
	const control = values[layout.widgets.indexOf(CONTROL)];
	return CONTROL_VALUES.includes(control) ? layout : null; // not a shape we know: leave it alone
}

function addLink(graphData, link) {
	const id = (graphData.last_link_id = Math.max(graphData.last_link_id ?? 0,
		...(graphData.links ?? []).map((l) => (Array.isArray(l) ? l[0] : l.id))) + 1);
	const [originId, originSlot, targetId, targetSlot] = link;
	graphData.links ??= [];
	const asArray = !graphData.links.length || Array.isArray(graphData.links[0]);
	graphData.links.push(asArray ? [id, originId, originSlot, targetId, targetSlot, OPTIONS_TYPE]
		: { id, origin_id: originId, origin_slot: originSlot, target_id: targetId, target_slot: targetSlot, type: OPTIONS_TYPE });
	return id;
}

function newNodeId(graphData) {
	const id = Math.max(graphData.last_node_id ?? 0, ...graphData.nodes.map((n) => Number(n.id) || 0)) + 1;
	graphData.last_node_id = id;
	return id;
}

/**
 * Rewrite the legacy Train nodes of a serialized graph in place; returns how many were migrated.
 * Needs the node definitions (registered before any graph loads) and `layouts` (legacyLayouts()).
 */
export function migrateTrainLayout(graphData, layouts) {
	if (!Array.isArray(graphData?.nodes)) return 0;
	const trainLayout = widgetLayout(TRAIN);
	if (!trainLayout) return 0;
	let migrated = 0;
	for (const node of [...graphData.nodes]) {
		const layout = legacyLayoutOf(node, layouts);
		if (!layout) continue;
		const old = Object.fromEntries(layout.widgets.map((name, i) => [name, node.widgets_values[i]]));
		const trainDefaults = defaults(TRAIN);
		node.widgets_values = trainLayout.map((name) => (name in old ? old[name] : trainDefaults[name]));
		delete node.size; // the node is far smaller now: let the frontend size it
		node.inputs ??= [];

		// options nodes for the moved values that differ from their defaults, chained into `options`
		let upstream = null; // [node id] whose `options` output feeds the next one
		let row = 0;
		for (const type of [PREVIEW_OPTIONS, TRAINING_OPTIONS]) {
			const names = widgetLayout(type);
			if (!names) continue;
			const typeDefaults = defaults(type);
			const values = names.map((name) => (name in old ? old[name] : typeDefaults[name]));
			if (!names.some((name) => name in old && old[name] !== typeDefaults[name])) continue;
			const id = newNodeId(graphData);
			const optionsNode = {
				id, type, pos: [node.pos?.[0] ?? 0, (node.pos?.[1] ?? 0) + 720 + 260 * row++], flags: {}, order: 0,
				mode: 0, inputs: [{ name: "options", type: OPTIONS_TYPE, link: null }],
				outputs: [{ name: "options", type: OPTIONS_TYPE, links: [], slot_index: 0 }],
				properties: { "Node name for S&R": type }, widgets_values: values,
			};
			graphData.nodes.push(optionsNode);
			if (upstream) {
				const link = addLink(graphData, [upstream.id, 0, id, 0]);
				upstream.outputs[0].links.push(link);
				optionsNode.inputs[0].link = link;
			}
			upstream = optionsNode;
		}
		if (upstream) {
			let slot = node.inputs.findIndex((input) => input.name === "options");
			if (slot < 0) slot = node.inputs.push({ name: "options", type: OPTIONS_TYPE, link: null }) - 1;
			const link = addLink(graphData, [upstream.id, 0, node.id, slot]);
			upstream.outputs[0].links.push(link);
			node.inputs[slot].link = link;
		}
		migrated++;
		console.info(`hypernetwork.trainLayout: migrated Train Hypernetwork #${node.id} from ${layout.name}`);
	}
	return migrated;
}

app.registerExtension({
	name: "hypernetwork.trainLayout",
	// Both frontends pass the workflow here before configuring the graph from it.
	async beforeConfigureGraph(graphData) {
		const current = widgetLayout(TRAIN)?.length;
		const candidates = (graphData?.nodes ?? []).filter((node) =>
			node?.type === TRAIN && Array.isArray(node.widgets_values) && node.widgets_values.length !== current);
		if (!candidates.length) return; // nothing saved in an older layout: no request
		try {
			migrateTrainLayout(graphData, await legacyLayouts());
		} catch (error) {
			console.warn("hypernetwork.trainLayout: could not migrate the Train node's old layout", error);
		}
	},
});
