// Train Hypernetwork: a live loss chart (raw + smoothed loss, learning rate on a second axis,
// rollback and NaN-skip events marked, held-out validation loss as its own line), fed by
// `hypernetwork.train.*` websocket events and
// replaced by the node's `loss` output when the run ends (or is restored after a reload).
import { app } from "../../scripts/app.js";
import { drawLossChart } from "./hn_chart.js";
import { addPackWidget, forPackNode, packElement } from "./hn_dom_widget.js";
import { chainMethod, listenForNode } from "./hn_events.js";
import { parseLenientJSON } from "./hn_history.js";

const NODE_TYPE = "TrainHypernetwork";
const WIDGET_NAME = "hn_loss_chart";

/** The chart's data: what the node's HN_LOSS output holds, grown one step at a time while training. */
export class LossSeries {
	constructor() {
		this.clear();
	}

	clear() {
		this.steps = [];
		this.losses = [];
		this.learning_rates = [];
		this.events = [];
		// held-out validation loss (raw and EMA weights): sparse {steps, losses}, as in the HN_LOSS output
		this.val_loss = { steps: [], losses: [] };
		this.val_loss_ema = { steps: [], losses: [] };
	}

	/** Drop everything after `step` (a rollback, or a new run starting lower than the last one). */
	truncateAfter(step) {
		const keep = this.steps.findIndex((s) => s > step);
		if (keep >= 0) {
			this.steps.length = keep;
			this.losses.length = keep;
			this.learning_rates.length = keep;
		}
		this.events = this.events.filter((e) => !(e.step > step));
		for (const line of [this.val_loss, this.val_loss_ema]) {
			const cut = line.steps.findIndex((s) => s > step);
			if (cut >= 0) {
				line.steps.length = cut;
				line.losses.length = cut;
			}
		}
	}

	/** A validation pass at `step`: the raw weights' held-out loss and the EMA's (either may be null). */
	addValidation(step, loss, emaLoss) {
		for (const [line, value] of [[this.val_loss, loss], [this.val_loss_ema, emaLoss]]) {
			if (!Number.isFinite(value)) continue;
			const at = line.steps.indexOf(step);
			if (at >= 0) line.losses[at] = value;
			else {
				line.steps.push(step);
				line.losses.push(value);
			}
		}
	}

	addStep(step, loss, lr) {
		if (this.steps.length && step <= this.steps[this.steps.length - 1]) this.truncateAfter(step - 1);
		this.steps.push(step);
		this.losses.push(Number.isFinite(loss) ? loss : null);
		this.learning_rates.push(Number.isFinite(lr) ? lr : null);
	}

	addEvent(event) {
		if (event.kind === "rollback") this.truncateAfter(event.step);
		this.events.push({ step: event.step, kind: event.kind, message: event.message });
	}

	replace(history) {
		this.clear();
		this.steps = [...(history?.steps ?? [])];
		this.losses = (history?.losses ?? []).map((v) => (Number.isFinite(v) ? v : null));
		this.learning_rates = [...(history?.learning_rates ?? [])];
		this.events = [...(history?.events ?? [])];
		for (const name of ["val_loss", "val_loss_ema"]) {
			const line = history?.[name];
			this[name] = { steps: [...(line?.steps ?? [])], losses: (line?.losses ?? []).map((v) => (Number.isFinite(v) ? v : null)) };
		}
	}
}

function addChartWidget(node) {
	const element = packElement("hn-loss-chart");
	const canvas = document.createElement("canvas");
	Object.assign(canvas.style, { width: "100%", height: "100%", display: "block", borderRadius: "4px" });
	element.append(canvas);

	const series = new LossSeries();
	let dirty = true;
	const redraw = () => {
		const width = Math.max(1, element.clientWidth);
		const height = Math.max(1, element.clientHeight);
		const scale = Math.max(window.devicePixelRatio || 1, 1);
		const pixelW = Math.round(width * scale);
		const pixelH = Math.round(height * scale);
		if (!dirty && canvas.width === pixelW && canvas.height === pixelH) return;
		canvas.width = pixelW;
		canvas.height = pixelH;
		const ctx = canvas.getContext("2d");
		ctx.setTransform(scale, 0, 0, scale, 0, 0);
		chart.pointsDrawn = drawLossChart(ctx, width, height, series);
		dirty = false;
	};
	const changed = () => {
		dirty = true;
		node.setDirtyCanvas?.(true, false);
	};

	const widget = addPackWidget(node, WIDGET_NAME, "hn_chart", element, {
		getMinHeight: () => 180,
		getHeight: () => 220,
		onDraw: redraw,
	});
	const chart = { widget, canvas, series, changed, redraw, pointsDrawn: 0 };
	return chart;
}

app.registerExtension({
	name: "hypernetwork.lossChart",
	beforeRegisterNodeDef: forPackNode(NODE_TYPE, (nodeType) => {
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			const chart = (this.hnLossChart = addChartWidget(this));
			listenForNode(this, "hypernetwork.train.progress", (detail) => {
				chart.series.addStep(detail.step, detail.loss, detail.lr);
				chart.changed();
			});
			listenForNode(this, "hypernetwork.train.event", (detail) => {
				chart.series.addEvent(detail);
				chart.changed();
			});
			listenForNode(this, "hypernetwork.train.validation", (detail) => {
				chart.series.addValidation(detail.step, detail.val_loss, detail.val_loss_ema);
				chart.changed();
			});
		});

		chainMethod(nodeType.prototype, "onExecuted", function (output) {
			const text = output?.loss?.[output.loss.length - 1];
			if (!text || !this.hnLossChart) return;
			try {
				this.hnLossChart.series.replace(typeof text === "string" ? parseLenientJSON(text) : text);
				this.hnLossChart.changed();
			} catch (error) {
				console.warn("hypernetwork.lossChart: unreadable loss output", error);
			}
		});
	}),
});
