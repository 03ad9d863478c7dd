// The dataset editor: a full-window overlay to curate a training folder's images and captions.
// This module holds the unsaved state (captions, exclusions, crops, undo/redo), talks to the server
// through api.js and lays out the panels drawn by gallery.js, tagPanel.js and detail.js. All edit
// logic runs on the server; nothing is written until Save (Ctrl+S).
import { listFolder, saveEdits, vocabulary } from "./api.js";
import { addTagsFromInput, renderDetail } from "./detail.js";
import { el, ensureStyle } from "./dom.js";
import { gridColumns, renderGallery, showSelected } from "./gallery.js";
import { showConflicts, showRestorePoints } from "./restorePoints.js";
import { renderTagPanel } from "./tagPanel.js";
import { joinTags } from "./tags.js";

const PAGE = 120;
const MAX_PAGE = 10000; // the list route's largest page
const PRELOAD = "600px"; // how far below the last card the next page starts loading

let current = null;

/** The open editor, if any. */
export const currentEditor = () => current;

/** The editor on one folder; `open()` shows it. */
export class DatasetEditor {
	constructor({ folder, captionExtension = ".txt", recursive = false }) {
		this.folder = folder;
		this.ext = captionExtension || ".txt";
		this.recursive = !!recursive;
		this.items = new Map(); // name -> {caption, version, has_caption} as last listed
		this.captions = new Map(); // unsaved caption text by name
		this.versions = new Map(); // caption version each unsaved edit is based on
		this.excluded = new Set();
		this.crops = {};
		this.editsVersion = null;
		this.editsDirty = false;
		this.undoStack = [];
		this.redoStack = [];
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

	// ------------------------------------------------------------ state and undo

	caption(name) {
		return this.captions.has(name) ? this.captions.get(name) : (this.items.get(name)?.caption ?? "");
	}

	get dirty() {
		return this.captions.size > 0 || this.editsDirty;
	}

	/** Apply one undoable change: {captions: {name: [before, after]}, excluded: {...}, crops: {...}}. */
	commit(change, label) {
		change.label = label;
		this.applyChange(change, 1);
		this.undoStack.push(change);
		this.redoStack.length = 0;
		this.refresh();
	}

	applyChange(change, direction) {
		const pick = (pair) => (direction > 0 ? pair[1] : pair[0]);
		for (const [name, pair] of Object.entries(change.captions ?? {})) {
			const text = pick(pair);
			const listed = this.items.get(name);
			if (!this.versions.has(name)) this.versions.set(name, listed?.version ?? change.versions?.[name] ?? null);
			if (text === (listed?.caption ?? "") && listed?.version === this.versions.get(name)) {
				this.captions.delete(name);
			} else {
				this.captions.set(name, text);
			}
		}
		for (const [name, pair] of Object.entries(change.excluded ?? {})) {
			if (pick(pair)) this.excluded.add(name); else this.excluded.delete(name);
			this.editsDirty = true;
		}
		for (const [name, pair] of Object.entries(change.crops ?? {})) {
			const box = pick(pair);
			if (box) this.crops[name] = box; else delete this.crops[name];
			this.editsDirty = true;
		}
	}

	undo() {
		const change = this.undoStack.pop();
		if (!change) return;
		this.applyChange(change, -1);
		this.redoStack.push(change);
		this.refresh();
	}

	redo() {
		const change = this.redoStack.pop();
		if (!change) return;
		this.applyChange(change, 1);
		this.undoStack.push(change);
		this.refresh();
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
		this.captions.clear();
		this.versions.clear();
		this.items.clear();
		this.excluded.clear();
		this.crops = {};
		this.editsDirty = false;
		this.editsLoaded = false;
		this.undoStack.length = 0;
		this.redoStack.length = 0;
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
		if (!this.editsLoaded && data.edits) {
			this.editsLoaded = true;
			this.editsVersion = data.edits_version;
			this.excluded = new Set(data.edits.excluded);
			this.crops = { ...data.edits.crops };
		}
		for (const item of data.items) {
			const known = this.items.get(item.name);
			if (this.captions.has(item.name) && known) continue; // keep the text/version the edit is based on
			this.items.set(item.name, { caption: item.caption, version: item.version, has_caption: item.has_caption });
		}
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
		const captions = [...this.captions].map(([name, text]) => ({ name, text, base: this.versions.get(name) ?? null }));
		const body = { ...this.requestBase(), captions, force };
		if (this.editsDirty) {
			body.edits = { excluded: [...this.excluded], crops: this.crops };
			body.edits_base = this.editsVersion;
		}
		try {
			const result = await saveEdits(body);
			for (const [name, text] of this.captions) {
				const version = result.versions[name] ?? this.versions.get(name);
				this.items.set(name, { caption: text, version, has_caption: true });
			}
			this.captions.clear();
			this.versions.clear();
			if (this.editsDirty) this.editsVersion = result.edits_version;
			this.editsDirty = false;
			this.undoStack.length = 0;
			this.redoStack.length = 0;
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
