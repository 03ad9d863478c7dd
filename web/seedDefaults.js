// Create / Train Hypernetwork: the `seed` input's "control after generate" starts at "fixed".
// Both frontends give every INT input named `seed` a control widget that defaults to
// "randomize", which would change the seed after each queue: Create Hypernetwork would then
// build a different network under the same name (refused: the file exists), and Train would
// silently train a different run. A loaded workflow keeps the control value it was saved with.
import { app } from "../../scripts/app.js";

const NODE_TYPES = new Set(["CreateHypernetwork", "TrainHypernetwork"]);
const SEED_INPUT = "seed";

/** The control widget linked to `node`'s seed widget, if the frontend added one. */
export function seedControl(node) {
	const seed = node.widgets?.find((w) => w.name === SEED_INPUT);
	return seed?.linkedWidgets?.find((w) => Array.isArray(w.options?.values) && w.options.values.includes("fixed")) ?? null;
}

app.registerExtension({
	name: "hypernetwork.seedDefaults",
	// Runs for new nodes and for loaded ones; a loaded node's saved value is applied afterwards.
	nodeCreated(node) {
		if (!NODE_TYPES.has(node.comfyClass ?? node.type)) return;
		const control = seedControl(node);
		if (control) control.value = "fixed";
	},
});
