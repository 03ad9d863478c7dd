// The dataset editor: a full-window overlay to curate a training folder's images and captions.
// This module adds the view to the unsaved state of state.js: it talks to the server through api.js,
// lays out the panels drawn by gallery.js, tagPanel.js and detail.js, and handles the keys. All
// edit logic runs on the server; nothing is written until Save (Ctrl+S).
import { listFolder, saveEdits, vocabulary } from "./api.js";
import { addTagsFromInput, renderDetail } from "./detail.js";
import { el, ensureStyle } from "./dom.js";
import { gridColumns, renderGallery, showSelected } from "./gallery.js";
import { showConflicts, showRestorePoints } from "./restorePoints.js";
import { renderTagPanel } from "./tagPanel.js";
import { EditState } from "./state.js";
import { joinTags } from "./tags.js";

const PAGE = 120;
const MAX_PAGE = 10000; // the list route's largest page
const PRELOAD = "600px"; // how far below the last card the next page starts loading

let current = null;

/** The open editor, if any. */
export const currentEditor = () => current;

/** The editor on one folder (its unsaved state, see EditState, and its view); `open()` shows it. */
export class DatasetEditor extends EditState {
	constructor({ folder, captionExtension = ".txt", recursive = false }) {
		super();
		this.folder = folder;
		this.ext = captionExtension || ".txt";
		this.recursive = !!recursive;
		this.filter = { include: [], exclude: [], mode: "all", text: "", uncaptioned: false, excluded: null };
		this.order = [];
		this.selected = null;
		this.picked = new Set(); // images ctrl/shift-clicked: the selection bulk edits and tag counts use
		this.matched = 0;
		this.total = 0;
		this.tagScope = "dataset";
		this.tagSort = "count";
		this.lastListing = null;
		this.vocabulary = [];
		this.aspect = "1:1";
		this.listRequest = 0;
	}

	// ------------------------------------------------------------ changes (state.js), then redraw

	/** Apply one undoable change and redraw. */
	commit(change, label) {
		this.record(change, label);
		this.refresh();
	}

	undo() {
		if (this.undoStep()) this.refresh();
	}

	redo() {
		if (this.redoStep()) this.refresh();
	}

	setCaption(name, text, label = "edit caption") {
		const before = this.caption(name);
		if (before === text) return;
		this.commit({ captions: { [name]: [before, text] } }, label);
	}

	setTags(name, tags, label) {
		this.setCaption(name, joinTags(tags), label);
	}

	setCrop(name, box) {
		const before = this.crops[name] ?? null;
		if (JSON.stringify(before) === JSON.stringify(box)) return;
		this.commit({ crops: { [name]: [before, box] } }, "crop");
	}

	/** Drop every unsaved change and reload from disk. */
	resetLocal() {
		this.forget();
		this.refresh();
	}

	// ------------------------------------------------------------ server

	requestBase() {
		return { folder: this.folder, caption_extension: this.ext, recursive: this.recursive };
	}

	overrides() {
		return Object.fromEntries(this.captions);
	}

	async list({ append = false, keep = true } = {}) {
		const ticket = ++this.listRequest;
		const offset = append ? this.order.length : 0;
		const limit = append || !keep ? PAGE : Math.min(MAX_PAGE, Math.max(PAGE, this.order.length));
		const data = await listFolder({
			...this.requestBase(), filter: this.filter, offset, limit, overrides: this.overrides(),
			excluded_names: this.editsLoaded ? [...this.excluded] : undefined, with_edits: !this.editsLoaded,
			selection: this.picked.size ? [...this.picked] : undefined,
		});
		if (ticket !== this.listRequest) return;
		this.folderReal = data.folder;
		this.absorb(data);
		this.total = data.total;
		this.matched = data.matched;
		this.lastListing = data;
		const names = data.items.map((i) => i.name);
		this.order = append ? [...this.order, ...names] : names;
		if (!this.order.includes(this.selected)) this.selected = this.order[0] ?? null;
		this.render();
	}

	/** Redraw from the local state at once (no stale chips between an edit and the server's answer),
	 * then re-list for the counts and filters. */
	refresh(keep = true) {
		if (this.lastListing && keep) this.render();
		this.list({ keep }).catch((error) => this.status(error.message, true));
	}

	async save({ force = false } = {}) {
		try {
			const result = await saveEdits({ ...this.requestBase(), ...this.saveBody(force) });
			this.saved(result);
			this.status(result.restore_point
				? `saved ${result.written.length} caption(s); restore point ${result.restore_point}` : "nothing to save");
			this.refresh();
			return result;
		} catch (error) {
			if (error.status === 409) {
				showConflicts(this, error.conflicts ?? [], error.message);
				return null;
			}
			this.status(error.message, true);
			throw error;
		}
	}

	// ------------------------------------------------------------ layout

	open() {
		if (current) current.close(true);
		current = this;
		ensureStyle();
		this.root = el("div", { class: "hn-de", tabindex: "-1", "data-folder": this.folder });
		this.head = el("div", { class: "hn-de-head" });
		this.side = el("div", { class: "hn-de-side" });
		this.main = el("div", { class: "hn-de-main" });
		this.detail = el("div", { class: "hn-de-detail" });
		this.grid = el("div", { class: "hn-de-grid" });
		const more = el("div", { class: "hn-de-more" });
		this.main.append(this.grid, more);
		this.root.append(this.head, this.side, this.main, this.detail);
		document.body.append(this.root);
		this.observer = new IntersectionObserver((entries) => {
			if (entries.some((e) => e.isIntersecting) && this.order.length < this.matched && !this.loadingMore) {
				this.loadingMore = true;
				this.list({ append: true }).catch((error) => this.status(error.message, true))
					.finally(() => { this.loadingMore = false; });
			}
		}, { root: this.main, rootMargin: PRELOAD });
		this.observer.observe(more);
		this.buildHead();
		this.root.focus();
		vocabulary().then((data) => { this.vocabulary = data.tags ?? []; }).catch(() => {});
		this.refresh();
		return this;
	}

	close(force = false) {
		if (!force && this.dirty && !window.confirm("The dataset editor has unsaved changes. Close anyway?")) return false;
		this.observer?.disconnect();
		this.root?.remove();
		if (current === this) current = null;
		return true;
	}

	status(text, isError = false) {
		this.message = text;
		this.messageIsError = isError;
		this.showStatus();
	}

	showStatus() {
		if (!this.statusEl) return;
		const count = this.lastListing ? `${this.matched} of ${this.total} images` : "loading…";
		this.statusEl.textContent = this.message ? `${count} · ${this.message}` : count;
		this.statusEl.classList.toggle("error", !!this.messageIsError);
	}

	buildHead() {
		const folderInput = el("input", { class: "hn-de-folder", value: this.folder,
			title: "Dataset folder (relative to ComfyUI's input folder, absolute, or ~/...)" });
		folderInput.addEventListener("change", () => {
			if (this.dirty && !window.confirm("Discard unsaved changes and open another folder?")) return;
			new DatasetEditor({ folder: folderInput.value, captionExtension: this.ext, recursive: this.recursive }).open();
		});
		const button = (cls, title, onclick, text) => el("button", { class: cls, title, onclick }, text);
		this.undoButton = button("hn-de-undo", "Undo (Ctrl+Z)", () => this.undo(), "Undo");
		this.redoButton = button("hn-de-redo", "Redo (Ctrl+Shift+Z)", () => this.redo(), "Redo");
		this.saveButton = button("hn-de-save", "Save captions, exclusions and crops (Ctrl+S)",
			() => this.save().catch(() => {}), "Save");
		this.statusEl = el("span", { class: "hn-de-status" });
		this.head.append(el("b", {}, "Dataset editor"), folderInput, this.undoButton, this.redoButton, this.saveButton,
			el("button", { onclick: () => showRestorePoints(this) }, "Restore points…"),
			el("button", { onclick: () => this.refresh() }, "Reload"),
			this.statusEl, el("button", { class: "hn-de-close", onclick: () => this.close() }, "Close"));
	}

	render() {
		renderGallery(this);
		renderTagPanel(this);
		renderDetail(this);
		this.undoButton.disabled = !this.undoStack.length;
		this.redoButton.disabled = !this.redoStack.length;
		this.saveButton.textContent = this.dirty ? `Save (${this.captions.size}${this.editsDirty ? "+" : ""})` : "Save";
		this.showStatus();
	}

	// ------------------------------------------------------------ selection and filter

	select(name) {
		this.selected = name;
		showSelected(this.grid, name);
		renderDetail(this);
	}

	/** Ctrl+click adds/removes one image to the selection, Shift+click a range from the current image. */
	pick(name, range) {
		if (range && this.selected) {
			const [a, b] = [this.order.indexOf(this.selected), this.order.indexOf(name)].sort((x, y) => x - y);
			for (const n of this.order.slice(a, b + 1)) this.picked.add(n);
		} else if (this.picked.has(name)) {
			this.picked.delete(name);
		} else {
			this.picked.add(name);
		}
		this.refresh();
	}

	move(step) {
		const index = this.order.indexOf(this.selected);
		const next = this.order[Math.min(this.order.length - 1, Math.max(0, index + step))];
		if (next) this.select(next);
	}

	setFilter(patch) {
		Object.assign(this.filter, patch);
		this.refresh(false);
	}

	// ------------------------------------------------------------ keys

	keydown(event) {
		const inField = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
		const ctrl = event.ctrlKey || event.metaKey;
		const key = event.key.toLowerCase();
		if (event.key === "Enter" && event.target.classList?.contains("hn-de-add")) {
			event.preventDefault();
			addTagsFromInput(this, event.target);
		} else if (ctrl && key === "s") {
			event.preventDefault();
			this.save().catch(() => {});
		} else if (ctrl && key === "z" && !inField) {
			event.preventDefault();
			if (event.shiftKey) this.redo(); else this.undo();
		} else if (ctrl && key === "y" && !inField) {
			event.preventDefault();
			this.redo();
		} else if (event.key === "Escape" && !inField) {
			this.close();
		} else if (!inField && event.key.startsWith("Arrow")) {
			event.preventDefault();
			const row = gridColumns(this.grid);
			this.move({ ArrowLeft: -1, ArrowRight: 1, ArrowUp: -row, ArrowDown: row }[event.key] ?? 0);
		} else if (!inField && event.key === "Enter") {
			event.preventDefault();
			this.detail.querySelector(".hn-de-add")?.focus();
		}
	}
}

/** Open the editor on `options` ({folder, captionExtension, recursive}); closes any other. */
export function openDatasetEditor(options) {
	return new DatasetEditor(options).open();
}
