// The crop box of the dataset editor: a frame over the selected image, dragged to move and by its
// handle to resize (keeping the chosen aspect); stored as fractions [left, top, right, bottom].
import { el } from "./dom.js";
import { thumbnail } from "./gallery.js";

export const ASPECTS = { free: null, "1:1": 1, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 3 / 2, "2:3": 2 / 3,
	"16:9": 16 / 9, "9:16": 9 / 16 };
const PREVIEW_SIZE = 384; // thumbnail pixels asked for
const SHOWN = 340; // longest side on screen: small images are enlarged so the box is easy to handle
const MIN_SIDE = 0.02;

const rounded = (box) => box.map((v) => Math.round(v * 10000) / 10000);

/** The largest centred box of `aspect` (a key of ASPECTS) for an image of w x h pixels. */
export function defaultBox(aspect, w, h) {
	const ratio = ASPECTS[aspect];
	if (!ratio) return [0.1, 0.1, 0.9, 0.9];
	const fw = Math.min(1, (h * ratio) / w);
	const fh = Math.min(1, (w / ratio) / h);
	return [(1 - fw) / 2, (1 - fh) / 2, (1 + fw) / 2, (1 + fh) / 2];
}

/** The box after a pointer moved by (dx, dy) (fractions of the image): moved, or resized from its
 * bottom-right corner keeping the pixel aspect `ratio` of an image shown `width` x `height`. */
function dragged(start, dx, dy, resize, ratio, width, height) {
	if (!resize) {
		const w = start[2] - start[0];
		const h = start[3] - start[1];
		const left = Math.min(1 - w, Math.max(0, start[0] + dx));
		const top = Math.min(1 - h, Math.max(0, start[1] + dy));
		return [left, top, left + w, top + h];
	}
	let w = Math.max(MIN_SIDE, Math.min(1 - start[0], start[2] - start[0] + dx));
	let h = Math.max(MIN_SIDE, Math.min(1 - start[1], start[3] - start[1] + dy));
	if (ratio) { // h_frac = w_frac * W / (ratio * H)
		const scale = width / (ratio * height);
		h = w * scale;
		if (start[1] + h > 1) {
			h = 1 - start[1];
			w = h / scale;
		}
	}
	return [start[0], start[1], start[0] + w, start[1] + h];
}

function frameOver(editor, name, wrap, box) {
	const frame = el("div", { class: "hn-de-box" }, el("div", { class: "hn-de-handle" }));
	const place = (b) => Object.assign(frame.style, { left: `${b[0] * 100}%`, top: `${b[1] * 100}%`,
		width: `${(b[2] - b[0]) * 100}%`, height: `${(b[3] - b[1]) * 100}%` });
	place(box);
	frame.addEventListener("pointerdown", (down) => {
		down.preventDefault();
		frame.setPointerCapture(down.pointerId);
		const resize = down.target.classList.contains("hn-de-handle");
		const rect = wrap.getBoundingClientRect();
		const ratio = ASPECTS[editor.aspect];
		let next = box;
		const onMove = (move) => {
			const dx = (move.clientX - down.clientX) / rect.width;
			const dy = (move.clientY - down.clientY) / rect.height;
			next = dragged(box, dx, dy, resize, ratio, rect.width, rect.height);
			place(next);
		};
		const onUp = () => {
			frame.removeEventListener("pointermove", onMove);
			frame.removeEventListener("pointerup", onUp);
			editor.setCrop(name, rounded(next));
		};
		frame.addEventListener("pointermove", onMove);
		frame.addEventListener("pointerup", onUp);
	});
	return frame;
}

/** The crop section of the detail panel for image `name`. */
export function cropEditor(editor, name) {
	const img = thumbnail(editor.folder, name, PREVIEW_SIZE, { draggable: "false" });
	img.addEventListener("load", () => {
		const scale = SHOWN / Math.max(img.naturalWidth, img.naturalHeight);
		img.style.width = `${Math.round(img.naturalWidth * scale)}px`;
		img.style.height = `${Math.round(img.naturalHeight * scale)}px`;
	});
	const wrap = el("div", { class: "hn-de-crop" }, img);
	const box = editor.crops[name];
	if (box) wrap.append(frameOver(editor, name, wrap, box));
	const aspect = el("select", { class: "hn-de-aspect", onchange: (e) => { editor.aspect = e.target.value; } },
		Object.keys(ASPECTS).map((k) => el("option", { value: k, selected: k === editor.aspect }, k)));
	const set = el("button", { class: "hn-de-crop-set", onclick: () => {
		editor.setCrop(name, rounded(defaultBox(editor.aspect, img.naturalWidth || 1, img.naturalHeight || 1)));
	} }, box ? "Reset crop" : "Crop…");
	const clear = el("button", { class: "hn-de-crop-clear", disabled: !box, onclick: () => editor.setCrop(name, null) },
		"No crop");
	return el("div", { class: "hn-de-section" }, wrap, el("div", { class: "hn-de-row" }, "crop", aspect, set, clear));
}
