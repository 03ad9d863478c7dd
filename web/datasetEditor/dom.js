// DOM helpers of the dataset editor: element creation and its one stylesheet (editor.css).

/** `el("div", {class: "x", onclick: f}, child, ...)`: attributes, listeners and children at once. */
export function el(tag, attrs = {}, ...children) {
	const node = document.createElement(tag);
	for (const [key, value] of Object.entries(attrs)) {
		if (key === "style") Object.assign(node.style, value);
		else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
		else if (key === "class") node.className = value;
		else if (value !== undefined && value !== null && value !== false) {
			node.setAttribute(key, value === true ? "" : value);
		}
	}
	for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
	return node;
}

const STYLE_ID = "hn-de-style";

/** Link editor.css once (it sits next to this module wherever the host serves the pack). */
export function ensureStyle() {
	if (document.getElementById(STYLE_ID)) return;
	const href = new URL("./editor.css", import.meta.url).href;
	document.head.append(el("link", { id: STYLE_ID, rel: "stylesheet", href }));
}
