// The dataset editor's gallery: one card per listed image (thumbnail, name, first tags), click to
// select, Ctrl/Shift+click to pick several; an image the server cannot read is labelled broken.
import { thumbnailError, thumbUrl } from "./api.js";
import { el } from "./dom.js";
import { splitTags } from "./tags.js";

export const THUMB = 192;
const CHIPS_ON_CARD = 12;
const GAP = 8; // the grid gap in editor.css

/** An <img> of an image's thumbnail that turns into a "broken image" label (with the server's
 * reason as its tooltip) when the server cannot read the image. */
export function thumbnail(folder, name, size, attrs = {}) {
	const img = el("img", { ...attrs, src: thumbUrl(folder, name, size), alt: name });
	img.addEventListener("error", async () => {
		const label = el("div", { class: "hn-de-broken", "data-name": name }, `broken image: ${name}`);
		img.replaceWith(label);
		label.closest(".hn-de-card")?.classList.add("broken");
		label.title = await thumbnailError(folder, name, size);
		label.textContent = `broken image: ${name} (${label.title})`;
	}, { once: true });
	return img;
}

function cardClass(editor, name) {
	const flags = [["sel", name === editor.selected], ["picked", editor.picked.has(name)],
		["excluded", editor.excluded.has(name)], ["dirty", editor.captions.has(name)]];
	return ["hn-de-card", ...flags.filter(([, on]) => on).map(([flag]) => flag)].join(" ");
}

function card(editor, name) {
	const caption = editor.caption(name);
	const chips = splitTags(caption).slice(0, CHIPS_ON_CARD).map((t) => el("span", { class: "hn-de-chip" }, t));
	const onclick = (event) => (event.ctrlKey || event.metaKey || event.shiftKey
		? editor.pick(name, event.shiftKey) : editor.select(name));
	return el("div", { class: cardClass(editor, name), "data-name": name, title: caption || "(no caption)", onclick },
		thumbnail(editor.folder, name, THUMB, { loading: "lazy" }),
		el("div", { class: "hn-de-name" }, name),
		el("div", { class: "hn-de-chips" }, chips));
}

/** Redraw every card of `editor.order` into `editor.grid`. */
export function renderGallery(editor) {
	editor.grid.replaceChildren(...editor.order.map((name) => card(editor, name)));
}

/** Mark the selected card and scroll it into view. */
export function showSelected(grid, name) {
	for (const item of grid.children) item.classList.toggle("sel", item.dataset.name === name);
	grid.querySelector(".hn-de-card.sel")?.scrollIntoView({ block: "nearest" });
}

/** How many cards a grid row holds (for the Up/Down arrow keys). */
export function gridColumns(grid) {
	const first = grid.children[0];
	if (!first) return 1;
	return Math.max(1, Math.round(grid.clientWidth / (first.offsetWidth + GAP)));
}
