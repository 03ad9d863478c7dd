// Train Hypernetwork: a live loss chart (raw + smoothed loss, learning rate on a second axis,
// rollback and NaN-skip events marked), fed by `hypernetwork.train.*` websocket events and
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
