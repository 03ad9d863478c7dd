// Train Hypernetwork: one status line (step / max, loss, learning rate, ETA) from the
// `hypernetwork.train.*` events; after the run (or a reload) the summary of the node's output.
import { app } from "../../scripts/app.js";
import { addPackWidget, forPackNode, packElement, textBoxStyle } from "./hn_dom_widget.js";
import { chainMethod, listenForNode } from "./hn_events.js";
import { parseLenientJSON } from "./hn_history.js";

const NODE_TYPE = "TrainHypernetwork";
const STATUS_HEIGHT = 58; // up to three wrapped lines

export function formatDuration(seconds) {
	if (!Number.isFinite(seconds) || seconds < 0) return "?";
	const s = Math.round(seconds);
	const h = Math.floor(s / 3600);
	const m = Math.floor((s % 3600) / 60);
	const rest = s % 60;
	if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
	if (m) return `${m}m ${String(rest).padStart(2, "0")}s`;
	return `${rest}s`;
}

function number(value, digits = 4) {
	return Number.isFinite(value) ? Number(value).toPrecision(digits) : "NaN";
}

/** The status line for a progress event ({step, max_steps, loss, lr, eta, epoch, event}). */
export function progressLine(detail) {
	const parts = [
		`step ${detail.step} / ${detail.max_steps}`,
		`loss ${number(detail.loss)}`,
		`lr ${Number.isFinite(detail.lr) ? Number(detail.lr).toExponential(2) : "?"}`,
		`ETA ${formatDuration(detail.eta)}`,
	];
	if (detail.event) parts.push(detail.event);
	return parts.join("  ·  ");
}

/** The status line for a finished run's loss history ({steps, losses, learning_rates, events}). */
export function summaryLine(history) {
	const steps = history?.steps ?? [];
	if (!steps.length) return "no training steps recorded";
	const last = steps.length - 1;
	const rollbacks = (history.events ?? []).filter((e) => e.kind === "rollback").length;
	const skipped = (history.events ?? []).filter((e) => String(e.kind).startsWith("nan")).length;
	const parts = [`trained to step ${steps[last]}`, `loss ${number(history.losses?.[last])}`,
		`lr ${Number.isFinite(history.learning_rates?.[last]) ? history.learning_rates[last].toExponential(2) : "?"}`];
	if (rollbacks) parts.push(`${rollbacks} rollback(s)`);
	if (skipped) parts.push(`${skipped} NaN skip(s)`);
	return parts.join("  ·  ");
}

app.registerExtension({
	name: "hypernetwork.trainStatus",
	beforeRegisterNodeDef: forPackNode(NODE_TYPE, (nodeType) => {
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			const element = packElement("hn-train-status", textBoxStyle({
				padding: "3px 6px",
				// wraps instead of being cut at the node's width (the new frontend's DOM widgets
				// clip a single long line); the widget is as tall as up to three lines
				whiteSpace: "normal",
				overflowWrap: "anywhere",
				overflowY: "auto",
			}));
			element.textContent = "not trained in this session yet";
			// One fixed height (min = preferred = max): the 2024 frontend shrinks every widget whose
			// preferred height exceeds its minimum by the same amount when space is short, which
			// squeezed this line to a few pixels while the chart and preview kept theirs.
			const widget = addPackWidget(this, "hn_train_status", "hn_status", element, {
				getMinHeight: () => STATUS_HEIGHT,
				getHeight: () => STATUS_HEIGHT,
				getMaxHeight: () => STATUS_HEIGHT,
			});
			let shown = false;
			const show = (text, title) => {
				element.textContent = text;
				element.title = title ?? text;
				shown = true;
			};
			this.hnTrainStatus = { element, widget, show, hasData: () => shown };
			listenForNode(this, "hypernetwork.train.progress", (detail) => show(progressLine(detail)));
			listenForNode(this, "hypernetwork.train.checkpoint", (detail) =>
				show(`${element.textContent.split("  ·  saved")[0]}  ·  saved step ${detail.step}`, detail.path));
			listenForNode(this, "hypernetwork.train.event", (detail) =>
				show(`step ${detail.step}: ${detail.kind}`, detail.message));
		});

		chainMethod(nodeType.prototype, "onExecuted", function (output) {
			const text = output?.loss?.[output.loss.length - 1];
			if (!text || !this.hnTrainStatus) return;
			try {
				const history = typeof text === "string" ? parseLenientJSON(text) : text;
				this.hnTrainStatus.show(summaryLine(history), output?.text?.[0]);
			} catch (error) {
				console.warn("hypernetwork.trainStatus: unreadable loss output", error);
			}
		});
	}),
});
