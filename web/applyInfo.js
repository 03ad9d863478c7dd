// Apply Hypernetwork: what the selected file is (layer structure, activation, training step, the
// model it was trained on, attention widths), read from the pack's GET /hypernetwork/info route.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { addPackWidget, forPackNode, packElement, textBoxStyle } from "./hn_dom_widget.js";
import { chainMethod } from "./hn_events.js";

const NODE_TYPE = "ApplyHypernetwork";
const NAME_WIDGET = "hypernetwork_name";
const LINE_HEIGHT = 14;
const CHAR_WIDTH = 6.7; // 11 px monospace

function yesNo(value) {
	return value ? "yes" : "no";
}

function size(bytes) {
	if (!Number.isFinite(bytes)) return "?";
	if (bytes < 1024) return `${bytes} B`;
	if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
	return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

/** The lines shown for a .hns composition: the whole, then one line per member. */
export function compositionLines(info) {
	const lines = [`composition: ${info.composition}`, `${info.members.length} members · widths ${info.widths.join(", ")}`];
	for (const member of info.members) {
		const strength = member.strength === 1 ? "" : ` @ ${member.strength}`;
		lines.push(`· ${member.name}${strength} = ${member.file} · step ${member.step} · layers ${member.layer_structure.join(", ")}`);
	}
	for (const warning of info.warnings || []) lines.push(`WARNING: ${warning}`);
	return lines;
}

/** The lines shown for a /hypernetwork/info answer. */
export function infoLines(info) {
	if (info.format === "hns") return compositionLines(info);
	const lines = [
		`${info.network_name} · step ${info.step} · ${size(info.file_size)}`,
		`layers ${info.layer_structure.join(", ")} · ${info.activation_func}`,
		`layer norm ${yesNo(info.is_layer_norm)} · dropout ${info.use_dropout ? info.dropout_structure.join(", ") : "no"}`,
		`widths ${info.widths.join(", ")}`,
		`${info.parameters.toLocaleString("en-US")} parameters · ${info.format}`,
		`base model: ${info.sd_checkpoint_name || "unknown"}${info.sd_checkpoint ? ` [${info.sd_checkpoint}]` : ""}`,
	];
	if (info.has_optimizer_state) lines.push("optimizer state (.optim) saved");
	if (info.optional_info) lines.push(`note: ${info.optional_info}`);
	for (const note of info.load_notes || []) lines.push(`read as A1111 does: ${note}`);
	for (const warning of info.warnings || []) lines.push(`WARNING: ${warning}`);
	return lines;
}

export async function fetchInfo(name) {
	const response = await api.fetchApi(`/hypernetwork/info?name=${encodeURIComponent(name)}`, { cache: "no-store" });
	const body = await response.json().catch(() => ({}));
	if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
	return body;
}

/** Lines `text` takes in an 11 px monospace box inside a node `nodeWidth` px wide. */
export function wrappedLines(text, nodeWidth) {
	const perLine = Math.max(10, Math.floor((nodeWidth - 40) / CHAR_WIDTH));
	return Math.max(1, text.split("\n").reduce((sum, line) => sum + Math.max(1, Math.ceil(line.length / perLine)), 0));
}

app.registerExtension({
	name: "hypernetwork.applyInfo",
	beforeRegisterNodeDef: forPackNode(NODE_TYPE, (nodeType) => {
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			const element = packElement("hn-apply-info", textBoxStyle({
				lineHeight: `${LINE_HEIGHT}px`,
				padding: "4px 6px",
				whiteSpace: "pre-wrap",
				overflow: "auto",
			}));
			const widget = addPackWidget(this, "hn_file_info", "hn_info", element, {
				// 2 x 10 px widget margin + padding and border, then the lines as wrapped at the
				// node's width (so the box grows with its text instead of clipping it)
				getMinHeight: () => 30 + LINE_HEIGHT * wrappedLines(element.textContent, this.size[0]),
			});

			let request = 0;
			const show = (text, state) => {
				element.textContent = text;
				element.dataset.state = state;
				const needed = this.computeSize?.()?.[1] ?? this.size[1];
				this.setSize([this.size[0], Math.max(this.size[1], needed)]); // grow the node to fit the lines
				this.setDirtyCanvas?.(true, true);
			};
			const refresh = async () => {
				const name = this.widgets?.find((w) => w.name === NAME_WIDGET)?.value;
				const mine = ++request;
				if (!name || name === "none") {
					show("uses the connected hypernetwork input", "none");
					return;
				}
				element.textContent = `reading ${name} ...`;
				element.dataset.state = "loading";
				try {
					const info = await fetchInfo(name);
					if (mine !== request) return;
					show(infoLines(info).join("\n"), "ok");
				} catch (error) {
					if (mine !== request) return;
					show(`${name}: ${error.message}`, "error");
				}
			};
			this.hnApplyInfo = { element, widget, refresh, show };

			const nameWidget = this.widgets?.find((w) => w.name === NAME_WIDGET);
			if (nameWidget) {
				const callback = nameWidget.callback;
				nameWidget.callback = function () {
					const result = callback?.apply(this, arguments);
					refresh();
					return result;
				};
			}
			setTimeout(refresh, 0); // after a workflow load has set the widget values
		});

		chainMethod(nodeType.prototype, "onConfigure", function () {
			this.hnApplyInfo?.refresh();
		});
	}),
});
