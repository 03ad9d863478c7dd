// Train Hypernetwork: the latest preview image with its step, from `hypernetwork.train.preview`
// events while training and from the node's `hn_preview` output afterwards (or after a reload).
// The output key is the pack's own: the frontend draws an `images` output below the node, a
// second copy of what this widget shows.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { addPackWidget, forPackNode, packElement } from "./hn_dom_widget.js";
import { chainMethod, listenForNode } from "./hn_events.js";

const NODE_TYPE = "TrainHypernetwork";

function viewUrl(image) {
	const params = new URLSearchParams({
		filename: image.filename,
		subfolder: image.subfolder ?? "",
		type: image.type ?? "temp",
	});
	return api.apiURL(`/view?${params}`);
}

function stepFromName(filename) {
	const match = /-(\d+)_\d+\.png$/.exec(filename ?? "");
	return match ? Number(match[1]) : null;
}

app.registerExtension({
	name: "hypernetwork.trainPreview",
	beforeRegisterNodeDef: forPackNode(NODE_TYPE, (nodeType) => {
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			// The host sets the widget element's `display` while drawing, so the flex layout lives
			// on an inner box.
			const element = packElement("hn-train-preview");
			const box = document.createElement("div");
			Object.assign(box.style, { display: "flex", flexDirection: "column", alignItems: "center", height: "100%" });
			const img = document.createElement("img");
			Object.assign(img.style, { flex: "1 1 0", minHeight: "0", width: "100%", objectFit: "contain", display: "none" });
			img.alt = "";
			const caption = document.createElement("div");
			Object.assign(caption.style, { font: "11px sans-serif", color: "var(--descrip-text, #999)" });
			caption.textContent = "preview: none yet (set preview_every)";
			box.append(img, caption);
			element.append(box);
			const widget = addPackWidget(this, "hn_train_preview", "hn_preview", element, {
				getMinHeight: () => 140,
				getHeight: () => 180,
			});
			const show = (image, step) => {
				img.src = viewUrl(image);
				img.style.display = "";
				caption.textContent = step != null ? `preview at step ${step}` : "latest preview";
				this.hnTrainPreview.image = image;
			};
			this.hnTrainPreview = { element, img, caption, widget, show, image: null };
			listenForNode(this, "hypernetwork.train.preview", (detail) => show(detail.image, detail.step));
		});

		chainMethod(nodeType.prototype, "onExecuted", function (output) {
			// `images`: outputs saved by pack versions before the `hn_preview` key (server history)
			const images = output?.hn_preview ?? output?.images ?? [];
			if (!images.length || !this.hnTrainPreview) return;
			const last = images[images.length - 1];
			this.hnTrainPreview.show(last, stepFromName(last.filename));
		});
	}),
});
