// Drawing the training loss chart on a 2D canvas: raw loss, smoothed loss, the learning rate on a
// second axis, rollback and NaN-skip events marked, the held-out validation loss (raw and EMA) as
// dotted lines with points. Pure drawing, no app state (a helper module).

export const COLORS = {
	background: "#1b1b1b",
	grid: "#333333",
	text: "#b0b0b0",
	raw: "rgba(90, 160, 255, 0.55)",
	smoothed: "rgb(255, 160, 40)",
	lr: "rgb(76, 208, 125)",
	rollback: "rgb(255, 64, 64)",
	nan: "rgb(255, 215, 0)",
	validation: "rgb(235, 90, 235)",
	validationEma: "rgb(40, 215, 215)",
	other: "rgb(160, 160, 160)",
};

// exponential moving average weight, debiased (as TensorBoard's slider); the PNG plot's too
// (hypernet/train/loss_plot.py), both checked against tests/cases/smooth_loss.json
const SMOOTHING = 0.9;

/** The smoothed series; null entries (non-finite losses) are skipped and stay null. */
export function smooth(values, weight = SMOOTHING) {
	let average = 0;
	let count = 0;
	return values.map((value) => {
		if (value == null || !Number.isFinite(value)) return null;
		average = weight * average + (1 - weight) * value;
		count += 1;
		return average / (1 - Math.pow(weight, count));
	});
}

function range(values) {
	let low = Infinity;
	let high = -Infinity;
	for (const v of values) {
		if (v == null || !Number.isFinite(v)) continue;
		low = Math.min(low, v);
		high = Math.max(high, v);
	}
	if (low === Infinity) return null;
	if (high - low < 1e-12) {
		const pad = Math.abs(high) * 0.1 || 1;
		return [low - pad, high + pad];
	}
	const pad = (high - low) * 0.06;
	return [low - pad, high + pad];
}

function label(value) {
	if (value === 0) return "0";
	const magnitude = Math.abs(value);
	return magnitude >= 1000 || magnitude < 0.01 ? value.toExponential(1) : value.toPrecision(3);
}

function polyline(ctx, xs, ys, color, width) {
	ctx.strokeStyle = color;
	ctx.lineWidth = width;
	ctx.beginPath();
	let drawing = false;
	for (let i = 0; i < xs.length; i++) {
		if (ys[i] == null) {
			drawing = false;
			continue;
		}
		if (drawing) ctx.lineTo(xs[i], ys[i]);
		else ctx.moveTo(xs[i], ys[i]);
		drawing = true;
	}
	ctx.stroke();
}

function validationPoints(ctx, xs, ys, color) {
	ctx.setLineDash([3, 2]);
	polyline(ctx, xs, ys, color, 1.5);
	ctx.setLineDash([]);
	ctx.fillStyle = color;
	for (let i = 0; i < xs.length; i++) if (ys[i] != null) ctx.fillRect(xs[i] - 2.5, ys[i] - 2.5, 5, 5);
}

/** The validation lines of `data` that have points: [[label, {steps, losses}, color], ...]. */
export function validationLines(data) {
	return [["val", data?.val_loss, COLORS.validation], ["val ema", data?.val_loss_ema, COLORS.validationEma]]
		.filter(([, line]) => line?.steps?.length);
}

/**
 * Draw `data` ({steps, losses, learning_rates, events, val_loss?, val_loss_ema?}) into a width x height area (CSS pixels;
 * the caller scales the context for the device pixel ratio). Returns the number of loss points drawn.
 */
export function drawLossChart(ctx, width, height, data) {
	ctx.fillStyle = COLORS.background;
	ctx.fillRect(0, 0, width, height);
	ctx.font = "10px sans-serif";
	const steps = data?.steps ?? [];
	const losses = data?.losses ?? [];
	const rates = data?.learning_rates ?? [];
	const validation = validationLines(data);
	const lossRange = range([...losses, ...validation.flatMap(([, line]) => line.losses ?? [])]);
	if (!steps.length || !lossRange) {
		ctx.fillStyle = COLORS.text;
		ctx.textAlign = "center";
		ctx.fillText("loss chart: waiting for training steps", width / 2, height / 2);
		return 0;
	}
	const left = 46;
	const right = 46;
	const top = 18;
	const bottom = 18;
	const plotW = Math.max(10, width - left - right);
	const plotH = Math.max(10, height - top - bottom);
	const first = steps[0];
	const last = steps[steps.length - 1] === first ? first + 1 : steps[steps.length - 1];
	const x = (step) => left + ((step - first) / (last - first)) * plotW;
	const yLoss = (v) => top + (1 - (v - lossRange[0]) / (lossRange[1] - lossRange[0])) * plotH;
	const maxRate = Math.max(0, ...rates.filter(Number.isFinite)) || 1;
	const yRate = (v) => top + (1 - v / (maxRate * 1.08)) * plotH;

	// grid and axis labels
	ctx.strokeStyle = COLORS.grid;
	ctx.lineWidth = 1;
	for (let i = 0; i <= 4; i++) {
		const y = top + (i / 4) * plotH;
		ctx.beginPath();
		ctx.moveTo(left, y);
		ctx.lineTo(left + plotW, y);
		ctx.stroke();
		ctx.fillStyle = COLORS.text;
		ctx.textAlign = "right";
		ctx.fillText(label(lossRange[1] - (i / 4) * (lossRange[1] - lossRange[0])), left - 4, y + 3);
		ctx.fillStyle = COLORS.lr;
		ctx.textAlign = "left";
		ctx.fillText(label(maxRate * 1.08 * (1 - i / 4)), left + plotW + 4, y + 3);
	}
	ctx.fillStyle = COLORS.text;
	ctx.textAlign = "left";
	ctx.fillText(`step ${first}`, left, height - 5);
	ctx.textAlign = "right";
	ctx.fillText(`step ${steps[steps.length - 1]}`, left + plotW, height - 5);

	// events: rollback = red line, NaN skip = yellow tick at the top, others grey
	for (const event of data?.events ?? []) {
		if (!Number.isFinite(event?.step)) continue;
		const ex = Math.min(left + plotW, Math.max(left, x(event.step)));
		const kind = String(event.kind ?? "");
		if (kind === "rollback") {
			ctx.strokeStyle = COLORS.rollback;
			ctx.setLineDash([4, 3]);
			ctx.lineWidth = 1.5;
			ctx.beginPath();
			ctx.moveTo(ex, top);
			ctx.lineTo(ex, top + plotH);
			ctx.stroke();
			ctx.setLineDash([]);
		} else {
			ctx.fillStyle = kind.startsWith("nan") ? COLORS.nan : COLORS.other;
			ctx.beginPath();
			ctx.moveTo(ex, top + 7);
			ctx.lineTo(ex - 4, top);
			ctx.lineTo(ex + 4, top);
			ctx.closePath();
			ctx.fill();
		}
	}

	const xs = steps.map(x);
	polyline(ctx, xs, rates.map((v) => (Number.isFinite(v) ? yRate(v) : null)), COLORS.lr, 1);
	polyline(ctx, xs, losses.map((v) => (v == null || !Number.isFinite(v) ? null : yLoss(v))), COLORS.raw, 1);
	polyline(ctx, xs, smooth(losses).map((v) => (v == null ? null : yLoss(v))), COLORS.smoothed, 2);
	for (const [, line, color] of validation) {
		const ys = line.losses.map((v) => (v == null || !Number.isFinite(v) ? null : yLoss(v)));
		validationPoints(ctx, line.steps.map(x), ys, color);
	}
	if (steps.length === 1) {
		ctx.fillStyle = COLORS.smoothed;
		ctx.fillRect(xs[0] - 2, yLoss(losses[0] ?? lossRange[0]) - 2, 4, 4);
	}

	// legend
	ctx.textAlign = "left";
	const legend = [["loss", COLORS.raw], ["smoothed", COLORS.smoothed], ["lr", COLORS.lr],
		...validation.map(([name, , color]) => [name, color])];
	let lx = left;
	for (const [name, color] of legend) {
		ctx.fillStyle = color;
		ctx.fillRect(lx, 5, 10, 3);
		ctx.fillStyle = COLORS.text;
		ctx.fillText(name, lx + 13, 11);
		lx += 20 + ctx.measureText(name).width;
	}
	return losses.filter((v) => v != null && Number.isFinite(v)).length;
}
