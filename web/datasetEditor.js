// Dataset editor: a full-window overlay to curate a training folder's images and captions
// (tags, filters, bulk edits, exclusions, crop boxes, undo/redo, restore points). Opened from an
// "Edit dataset…" button on Load Dataset / Preprocess / WD14 Tagger, and from a sidebar tab on the
// new frontend. All edit logic runs on the server (/hypernetwork/dataset/*); this file holds the
// unsaved state and draws it. Nothing is written until Save (Ctrl+S).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { chainMethod } from "./hn_events.js";
import { joinTags, splitTags } from "./datasetEditor/tags.js";

const ROUTE = "/hypernetwork/dataset";
const PAGE = 120;
const MAX_PAGE = 10000; // the list route's largest page
const THUMB = 192;
const BUTTON = "hn_edit_dataset";
const NODE_TYPES = ["HypernetworkLoadDataset", "HypernetworkPreprocess", "HypernetworkWD14Tag"];
const ASPECTS = { free: null, "1:1": 1, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 3 / 2, "2:3": 2 / 3, "16:9": 16 / 9, "9:16": 9 / 16 };

const CSS = `
.hn-de{position:fixed;inset:0;z-index:10000;background:#16181d;color:#ddd;font:13px system-ui,sans-serif;display:grid;
 grid-template-rows:auto 1fr;grid-template-columns:250px 1fr 360px;grid-template-areas:"head head head" "side main detail"}
.hn-de *{box-sizing:border-box}
.hn-de button,.hn-de select,.hn-de input,.hn-de textarea{font:inherit;color:#eee;background:#2a2d35;border:1px solid #444;border-radius:4px;padding:3px 7px}
.hn-de button:hover{background:#3a3e4a}.hn-de button:disabled{opacity:.45}
.hn-de-head{grid-area:head;display:flex;gap:6px;align-items:center;padding:6px 10px;border-bottom:1px solid #333;flex-wrap:wrap}
.hn-de-head .hn-de-folder{flex:0 1 360px}.hn-de-status{margin-left:auto;opacity:.85}
.hn-de-side{grid-area:side;overflow:auto;padding:8px;border-right:1px solid #333;display:flex;flex-direction:column;gap:8px}
.hn-de-main{grid-area:main;overflow:auto;padding:8px}
.hn-de-detail{grid-area:detail;overflow:auto;padding:8px;border-left:1px solid #333;display:flex;flex-direction:column;gap:8px}
.hn-de-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(${THUMB}px,1fr));gap:8px}
.hn-de-card{background:#20232a;border:2px solid transparent;border-radius:6px;overflow:hidden;cursor:pointer;position:relative}
.hn-de-card.sel{border-color:#4a9eff}.hn-de-card.picked{outline:3px solid #fc6;outline-offset:-3px}.hn-de-card.excluded img{opacity:.3}.hn-de-card.dirty::after{content:"●";position:absolute;top:2px;right:6px;color:#fc6}
.hn-de-card img{width:100%;height:${THUMB}px;object-fit:contain;background:#111;display:block}
.hn-de-card .hn-de-name{font-size:11px;opacity:.7;padding:2px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.hn-de-chips{display:flex;flex-wrap:wrap;gap:3px;padding:3px}
.hn-de-chip{background:#34495e;border-radius:9px;padding:1px 7px;font-size:11px;white-space:nowrap;display:inline-flex;gap:4px;align-items:center}
.hn-de-chip.inc{background:#2e7d32}.hn-de-chip.exc{background:#9c2b2b}
.hn-de-chip[draggable=true]{cursor:grab}.hn-de-chip .x{cursor:pointer;opacity:.7}
.hn-de-tags{display:flex;flex-direction:column;gap:1px;max-height:45vh;overflow:auto}
.hn-de-tag{display:flex;justify-content:space-between;cursor:pointer;padding:1px 4px;border-radius:3px}
.hn-de-tag:hover{background:#2a2d35}.hn-de-tag span:last-child{opacity:.6}
.hn-de-section{border:1px solid #333;border-radius:6px;padding:6px;display:flex;flex-direction:column;gap:5px}
.hn-de-section>b{font-size:12px;opacity:.8}
.hn-de-row{display:flex;gap:5px;align-items:center;flex-wrap:wrap}
.hn-de-crop{position:relative;align-self:center;user-select:none}
.hn-de-crop img{display:block;image-rendering:auto}
.hn-de-box{position:absolute;border:2px solid #4a9eff;box-shadow:0 0 0 9999px rgba(0,0,0,.45);cursor:move}
.hn-de-handle{position:absolute;right:-7px;bottom:-7px;width:14px;height:14px;background:#4a9eff;cursor:nwse-resize;border-radius:3px}
.hn-de textarea{width:100%;min-height:70px;resize:vertical}
.hn-de-modal{position:absolute;inset:15% 25%;background:#20232a;border:1px solid #555;border-radius:8px;padding:12px;overflow:auto;z-index:2;display:flex;flex-direction:column;gap:8px}
`;

function el(tag, attrs = {}, ...children) {
	const node = document.createElement(tag);
	for (const [key, value] of Object.entries(attrs)) {
		if (key === "style") Object.assign(node.style, value);
		else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
		else if (key === "class") node.className = value;
		else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
	}
	for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
	return node;
}

async function call(route, body) {
	const response = await api.fetchApi(`${ROUTE}/${route}`, body === undefined ? { cache: "no-store" } : {
		method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
	});
	const data = await response.json().catch(() => ({}));
	if (!response.ok) {
		const error = new Error(data.error ?? `HTTP ${response.status}`);
		error.status = response.status;
		error.conflicts = data.conflicts;
		throw error;
	}
	return data;
}

let styleAdded = false;
let current = null;

/** The editor on one folder; `open()` is the entry point. */
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
		this.offset = 0;
		this.matched = 0;
		this.total = 0;
		this.tagScope = "dataset";
		this.tagSort = "count";
		this.lastListing = null;
		this.vocabulary = [];
		this.aspect = "1:1";
		this.listRequest = 0;
	}

	// ------------------------------------------------------------ state

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
			if (!this.versions.has(name)) this.versions.set(name, this.items.get(name)?.version ?? change.versions?.[name] ?? null);
			if (text === (this.items.get(name)?.caption ?? "") && this.items.get(name)?.version === this.versions.get(name)) {
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
		const data = await call("list", {
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
		this.order = append ? [...this.order, ...data.items.map((i) => i.name)] : data.items.map((i) => i.name);
		if (!this.order.includes(this.selected)) this.selected = this.order[0] ?? null;
		this.render();
	}

	/** Redraw from the local state at once (no stale chips between an edit and the server's answer),
	 * then re-list for the counts and filters. */
	refresh(keep = true) {
		if (this.lastListing && keep) this.render();
		this.list({ keep }).catch((error) => this.status(error.message, true));
	}

	async bulk(op) {
		const target = this.picked.size ? { names: [...this.picked] } : { filter: this.filter };
		return call("bulk", {
			...this.requestBase(), op, ...target, overrides: this.overrides(), dry_run: true,
			excluded_names: [...this.excluded],
		});
	}

	async applyBulk(op) {
		const preview = await this.bulk(op);
		const captions = {};
		for (const [name, text] of Object.entries(preview.captions)) {
			if (!this.items.has(name)) {
				this.items.set(name, { caption: preview.before[name], version: preview.versions[name], has_caption: true });
			}
			captions[name] = [preview.before[name], text];
		}
		if (!Object.keys(captions).length) {
			this.status("no caption changes");
			return 0;
		}
		this.commit({ captions, versions: preview.versions }, `bulk ${op.kind}`);
		return preview.changed;
	}

	async save({ force = false } = {}) {
		const captions = [...this.captions].map(([name, text]) => ({ name, text, base: this.versions.get(name) ?? null }));
		const body = { ...this.requestBase(), captions, force };
		if (this.editsDirty) {
			body.edits = { excluded: [...this.excluded], crops: this.crops };
			body.edits_base = this.editsVersion;
		}
		try {
			const result = await call("save", body);
			for (const [name, text] of this.captions) {
				this.items.set(name, { caption: text, version: result.versions[name] ?? this.versions.get(name),
					has_caption: true });
			}
			this.captions.clear();
			this.versions.clear();
			if (this.editsDirty) this.editsVersion = result.edits_version;
			this.editsDirty = false;
			this.undoStack.length = 0;
			this.redoStack.length = 0;
			this.status(result.restore_point ? `saved ${result.written.length} caption(s); restore point ${result.restore_point}`
				: "nothing to save");
			this.refresh();
			return result;
		} catch (error) {
			if (error.status === 409) {
				this.showConflicts(error.conflicts ?? [], error.message);
				return null;
			}
			this.status(error.message, true);
			throw error;
		}
	}

	// ------------------------------------------------------------ UI

	open() {
		if (current) current.close(true);
		current = this;
		if (!styleAdded) {
			document.head.append(el("style", { id: "hn-de-style" }, CSS));
			styleAdded = true;
		}
		this.root = el("div", { class: "hn-de", tabindex: "-1", "data-folder": this.folder });
		this.head = el("div", { class: "hn-de-head" });
		this.side = el("div", { class: "hn-de-side" });
		this.main = el("div", { class: "hn-de-main" });
		this.detail = el("div", { class: "hn-de-detail" });
		this.grid = el("div", { class: "hn-de-grid" });
		this.main.append(this.grid, el("div", { class: "hn-de-more", style: { height: "20px" } }));
		this.root.append(this.head, this.side, this.main, this.detail);
		document.body.append(this.root);
		this.observer = new IntersectionObserver((entries) => {
			if (entries.some((e) => e.isIntersecting) && this.order.length < this.matched && !this.loadingMore) {
				this.loadingMore = true;
				this.list({ append: true }).catch((error) => this.status(error.message, true))
					.finally(() => { this.loadingMore = false; });
			}
		}, { root: this.main, rootMargin: "600px" });
		this.observer.observe(this.main.lastChild);
		this.buildHead();
		this.root.focus();
		call("vocabulary").then((data) => { this.vocabulary = data.tags ?? []; }).catch(() => {});
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
		this.statusEl.style.color = this.messageIsError ? "#f77" : "";
	}

	buildHead() {
		const folderInput = el("input", { class: "hn-de-folder", value: this.folder, title: "Dataset folder (relative to ComfyUI's input folder, or absolute)" });
		folderInput.addEventListener("change", () => {
			if (this.dirty && !window.confirm("Discard unsaved changes and open another folder?")) return;
			new DatasetEditor({ folder: folderInput.value, captionExtension: this.ext, recursive: this.recursive }).open();
		});
		this.undoButton = el("button", { class: "hn-de-undo", title: "Undo (Ctrl+Z)", onclick: () => this.undo() }, "Undo");
		this.redoButton = el("button", { class: "hn-de-redo", title: "Redo (Ctrl+Shift+Z)", onclick: () => this.redo() }, "Redo");
		this.saveButton = el("button", { class: "hn-de-save", title: "Save captions, exclusions and crops (Ctrl+S)",
			onclick: () => this.save().catch(() => {}) }, "Save");
		this.statusEl = el("span", { class: "hn-de-status" });
		this.head.append(el("b", {}, "Dataset editor"), folderInput, this.undoButton, this.redoButton, this.saveButton,
			el("button", { onclick: () => this.showRestorePoints() }, "Restore points…"),
			el("button", { onclick: () => this.refresh() }, "Reload"),
			this.statusEl, el("button", { class: "hn-de-close", onclick: () => this.close() }, "Close"));
	}

	render() {
		this.renderGrid();
		this.renderSide();
		this.renderDetail();
		this.undoButton.disabled = !this.undoStack.length;
		this.redoButton.disabled = !this.redoStack.length;
		this.saveButton.textContent = this.dirty ? `Save (${this.captions.size}${this.editsDirty ? "+" : ""})` : "Save";
		this.showStatus();
	}

	thumbUrl(name, size = THUMB) {
		const query = new URLSearchParams({ folder: this.folder, name, size: String(size) });
		return api.apiURL(`${ROUTE}/thumbnail?${query}`);
	}

	renderGrid() {
		const cards = this.order.map((name) => {
			const tags = splitTags(this.caption(name));
			const card = el("div", {
				class: `hn-de-card${name === this.selected ? " sel" : ""}${this.picked.has(name) ? " picked" : ""}${this.excluded.has(name) ? " excluded" : ""}${this.captions.has(name) ? " dirty" : ""}`,
				"data-name": name, title: this.caption(name) || "(no caption)",
				onclick: (event) => (event.ctrlKey || event.metaKey || event.shiftKey ? this.pick(name, event.shiftKey) : this.select(name)),
			}, el("img", { loading: "lazy", src: this.thumbUrl(name), alt: name }),
			el("div", { class: "hn-de-name" }, name),
			el("div", { class: "hn-de-chips" }, tags.slice(0, 12).map((t) => el("span", { class: "hn-de-chip" }, t))));
			return card;
		});
		this.grid.replaceChildren(...cards);
	}

	select(name) {
		this.selected = name;
		for (const card of this.grid.children) card.classList.toggle("sel", card.dataset.name === name);
		this.renderDetail();
		this.grid.querySelector(`.hn-de-card.sel`)?.scrollIntoView({ block: "nearest" });
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

	columns() {
		const first = this.grid.children[0];
		if (!first) return 1;
		return Math.max(1, Math.round(this.grid.clientWidth / (first.offsetWidth + 8)));
	}

	setFilter(patch) {
		Object.assign(this.filter, patch);
		this.refresh(false);
	}

	renderSide() {
		const data = this.lastListing;
		if (!data) return;
		if (this.tagScope === "selection" && !this.picked.size) this.tagScope = "matched";
		const counts = { dataset: data.tags, matched: data.matched_tags, selection: data.selection_tags ?? [] }[this.tagScope];
		const sorted = [...counts].sort(this.tagSort === "count" ? (a, b) => b[1] - a[1] || a[0].localeCompare(b[0])
			: (a, b) => a[0].localeCompare(b[0]));
		const chip = (tag, kind) => el("span", { class: `hn-de-chip ${kind}` }, tag,
			el("span", { class: "x", onclick: () => this.setFilter({ [kind === "inc" ? "include" : "exclude"]:
				this.filter[kind === "inc" ? "include" : "exclude"].filter((t) => t !== tag) }) }, "×"));
		const search = el("input", { class: "hn-de-search", placeholder: "text in captions", value: this.filter.text });
		search.addEventListener("change", () => this.setFilter({ text: search.value }));
		const tagFind = el("input", { class: "hn-de-tagfind", placeholder: "find tag" });
		const list = el("div", { class: "hn-de-tags" });
		const fill = () => {
			const needle = tagFind.value.toLowerCase();
			list.replaceChildren(...sorted.filter(([t]) => !needle || t.toLowerCase().includes(needle)).slice(0, 500).map(([tag, n]) =>
				el("div", { class: "hn-de-tag", "data-tag": tag, title: "click: show only images with this tag · shift+click: hide them",
					onclick: (event) => {
						const key = event.shiftKey || event.altKey ? "exclude" : "include";
						if (!this.filter[key].includes(tag)) this.setFilter({ [key]: [...this.filter[key], tag] });
					} }, el("span", {}, tag), el("span", {}, String(n)))));
		};
		tagFind.addEventListener("input", fill);
		fill();
		const mode = el("select", { class: "hn-de-mode", onchange: (e) => this.setFilter({ mode: e.target.value }) },
			el("option", { value: "all", selected: this.filter.mode === "all" }, "all of (AND)"),
			el("option", { value: "any", selected: this.filter.mode === "any" }, "any of (OR)"));
		const uncaptioned = el("input", { type: "checkbox", class: "hn-de-uncaptioned", checked: this.filter.uncaptioned,
			onchange: (e) => this.setFilter({ uncaptioned: e.target.checked }) });
		const shown = el("select", { class: "hn-de-shown", onchange: (e) => this.setFilter({ excluded: e.target.value === "" ? null : e.target.value === "1" }) },
			el("option", { value: "", selected: this.filter.excluded === null }, "all images"),
			el("option", { value: "0", selected: this.filter.excluded === false }, "included only"),
			el("option", { value: "1", selected: this.filter.excluded === true }, "excluded only"));
		this.side.replaceChildren(
			el("div", { class: "hn-de-section" }, el("b", {}, "Filter"),
				el("div", { class: "hn-de-row" }, "with", mode),
				el("div", { class: "hn-de-chips hn-de-include" }, this.filter.include.map((t) => chip(t, "inc"))),
				el("div", { class: "hn-de-row" }, "without"),
				el("div", { class: "hn-de-chips hn-de-exclude" }, this.filter.exclude.map((t) => chip(t, "exc"))),
				search, el("label", { class: "hn-de-row" }, uncaptioned, "no caption only"), shown,
				el("button", { onclick: () => this.setFilter({ include: [], exclude: [], text: "", uncaptioned: false, excluded: null }) }, "Clear filter")),
			this.bulkPanel(),
			el("div", { class: "hn-de-section" },
				el("div", { class: "hn-de-row" }, el("b", {}, "Tags"),
					el("select", { class: "hn-de-scope", onchange: (e) => { this.tagScope = e.target.value; this.renderSide(); } },
						el("option", { value: "dataset", selected: this.tagScope === "dataset" }, "dataset"),
						el("option", { value: "matched", selected: this.tagScope === "matched" }, "filtered"),
						this.picked.size ? el("option", { value: "selection", selected: this.tagScope === "selection" }, `selected (${this.picked.size})`) : null),
					el("select", { class: "hn-de-sort", onchange: (e) => { this.tagSort = e.target.value; this.renderSide(); } },
						el("option", { value: "count", selected: this.tagSort === "count" }, "by count"),
						el("option", { value: "name", selected: this.tagSort === "name" }, "by name"))),
				tagFind, list));
	}

	bulkPanel() {
		const title = () => (this.picked.size ? `Bulk edit on the ${this.picked.size} selected images`
			: `Bulk edit on the ${this.matched} filtered images`);
		if (this.bulkEl) {
			this.bulkTitle.textContent = title();
			this.clearPick.hidden = !this.picked.size;
			return this.bulkEl;
		}
		const kind = el("select", { class: "hn-de-bulk-kind" }, ["add", "remove", "replace", "dedupe", "sort"].map((k) => el("option", { value: k }, k)));
		const tag = el("input", { class: "hn-de-bulk-tag", placeholder: "tag (or regex)" });
		const replacement = el("input", { class: "hn-de-bulk-new", placeholder: "replace with" });
		const position = el("select", { class: "hn-de-bulk-pos" }, el("option", { value: "back" }, "at end"), el("option", { value: "front" }, "at front"));
		const regex = el("input", { type: "checkbox", class: "hn-de-bulk-regex" });
		const result = el("span", { class: "hn-de-bulk-result" });
		const op = () => ({ kind: kind.value, tag: tag.value, new: replacement.value, position: position.value, regex: regex.checked });
		const preview = el("button", { class: "hn-de-bulk-preview", onclick: async () => {
			try {
				const answer = await this.bulk(op());
				result.textContent = `${answer.changed} of ${answer.considered} captions change`;
			} catch (error) { result.textContent = error.message; }
		} }, "Preview");
		const apply = el("button", { class: "hn-de-bulk-apply", onclick: async () => {
			try {
				const changed = await this.applyBulk(op());
				result.textContent = `${changed} captions changed (unsaved)`;
			} catch (error) { result.textContent = error.message; }
		} }, "Apply");
		this.bulkTitle = el("b", {}, title());
		this.clearPick = el("button", { class: "hn-de-unpick", hidden: !this.picked.size,
			onclick: () => { this.picked.clear(); this.refresh(); } }, "Clear selection");
		this.bulkEl = el("div", { class: "hn-de-section hn-de-bulk" }, this.bulkTitle, this.clearPick,
			el("div", { class: "hn-de-row" }, kind, position), tag, replacement,
			el("label", { class: "hn-de-row" }, regex, "regular expression"), el("div", { class: "hn-de-row" }, preview, apply), result);
		return this.bulkEl;
	}

	renderDetail() {
		const name = this.selected;
		// redraw only when what it shows changed: a list answer arriving must not reset a drag or a
		// half-typed tag
		const signature = JSON.stringify([name, name && this.caption(name), this.crops[name] ?? null,
			this.excluded.has(name)]);
		if (signature === this.detailSignature) return;
		this.detailSignature = signature;
		if (!name) {
			this.detail.replaceChildren(el("i", {}, "No image selected."));
			return;
		}
		const tags = splitTags(this.caption(name));
		const chips = el("div", { class: "hn-de-chips hn-de-detail-tags" });
		tags.forEach((tag, index) => {
			const chip = el("span", { class: "hn-de-chip", draggable: "true", "data-index": String(index) }, tag,
				el("span", { class: "x", title: "remove", onclick: () => this.setTags(name, tags.filter((_, i) => i !== index), "remove tag") }, "×"));
			chip.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/x-hn-tag", String(index)));
			chip.addEventListener("dragover", (e) => e.preventDefault());
			chip.addEventListener("drop", (e) => {
				e.preventDefault();
				const from = Number(e.dataTransfer.getData("text/x-hn-tag"));
				this.reorder(name, from, index);
			});
			chips.append(chip);
		});
		const datalist = el("datalist", { id: "hn-de-suggest" });
		const add = el("input", { class: "hn-de-add", placeholder: "add tag, Enter", list: "hn-de-suggest" });
		add.addEventListener("input", () => {
			const needle = add.value.trim().toLowerCase();
			if (!needle) return datalist.replaceChildren();
			const own = (this.lastListing?.tags ?? []).map(([t]) => t);
			const seen = new Set();
			const hits = [...own, ...this.vocabulary].filter((t) => t.toLowerCase().includes(needle) && !seen.has(t) && seen.add(t)).slice(0, 40);
			datalist.replaceChildren(...hits.map((t) => el("option", { value: t })));
		});
		const raw = el("textarea", { class: "hn-de-raw" }, this.caption(name));
		raw.addEventListener("change", () => this.setCaption(name, raw.value.trim(), "edit caption"));
		const excluded = el("input", { type: "checkbox", class: "hn-de-exclude-image", checked: this.excluded.has(name),
			onchange: (e) => this.commit({ excluded: { [name]: [this.excluded.has(name), e.target.checked] } }, "exclude") });
		this.detail.replaceChildren(el("b", {}, name), this.cropEditor(name),
			el("div", { class: "hn-de-section" }, el("b", {}, "Tags (drag to reorder)"), chips, add, datalist),
			el("div", { class: "hn-de-section" }, el("b", {}, "Caption"), raw),
			el("label", { class: "hn-de-row" }, excluded, "exclude from training (kept on disk)"));
	}

	/** Enter in the add-tag field: its tags go to the end of the selected image's caption. */
	addFromInput(input) {
		const name = this.selected;
		if (!name || !input.value.trim()) return;
		const tags = splitTags(this.caption(name));
		const have = new Set(tags);
		const extra = splitTags(input.value).filter((t) => !have.has(t));
		input.value = "";
		if (extra.length) this.setTags(name, [...tags, ...extra], "add tag");
		this.detail.querySelector(".hn-de-add")?.focus();
	}

	reorder(name, from, to) {
		const tags = splitTags(this.caption(name));
		if (!(from >= 0 && from < tags.length) || from === to) return;
		const [moved] = tags.splice(from, 1);
		tags.splice(to, 0, moved);
		this.setTags(name, tags, "reorder tags");
	}

	setCrop(name, box) {
		const before = this.crops[name] ?? null;
		if (JSON.stringify(before) === JSON.stringify(box)) return;
		this.commit({ crops: { [name]: [before, box] } }, "crop");
	}

	/** The largest centred box of the chosen aspect (in pixels) for an image of w x h. */
	defaultBox(w, h) {
		const aspect = ASPECTS[this.aspect];
		if (!aspect) return [0.1, 0.1, 0.9, 0.9];
		const fw = Math.min(1, (h * aspect) / w);
		const fh = Math.min(1, (w / aspect) / h);
		return [(1 - fw) / 2, (1 - fh) / 2, (1 + fw) / 2, (1 + fh) / 2];
	}

	cropEditor(name) {
		const img = el("img", { src: this.thumbUrl(name, 384), alt: name, draggable: "false" });
		img.addEventListener("load", () => { // small images are shown enlarged, so the box is easy to handle
			const scale = 340 / Math.max(img.naturalWidth, img.naturalHeight);
			img.style.width = `${Math.round(img.naturalWidth * scale)}px`;
			img.style.height = `${Math.round(img.naturalHeight * scale)}px`;
		});
		const wrap = el("div", { class: "hn-de-crop" }, img);
		const box = this.crops[name];
		if (box) {
			const frame = el("div", { class: "hn-de-box" }, el("div", { class: "hn-de-handle" }));
			const place = (b) => Object.assign(frame.style, { left: `${b[0] * 100}%`, top: `${b[1] * 100}%`,
				width: `${(b[2] - b[0]) * 100}%`, height: `${(b[3] - b[1]) * 100}%` });
			place(box);
			wrap.append(frame);
			frame.addEventListener("pointerdown", (down) => {
				down.preventDefault();
				frame.setPointerCapture(down.pointerId);
				const resize = down.target.classList.contains("hn-de-handle");
				const rect = wrap.getBoundingClientRect();
				const start = [...box];
				const aspect = ASPECTS[this.aspect];
				let next = start;
				const onMove = (move) => {
					const dx = (move.clientX - down.clientX) / rect.width;
					const dy = (move.clientY - down.clientY) / rect.height;
					if (resize) {
						let w = Math.max(0.02, Math.min(1 - start[0], start[2] - start[0] + dx));
						let h = Math.max(0.02, Math.min(1 - start[1], start[3] - start[1] + dy));
						if (aspect) { // keep the pixel aspect: h_frac = w_frac * W / (aspect * H)
							const ratio = rect.width / (aspect * rect.height);
							h = w * ratio;
							if (start[1] + h > 1) { h = 1 - start[1]; w = h / ratio; }
						}
						next = [start[0], start[1], start[0] + w, start[1] + h];
					} else {
						const w = start[2] - start[0], h = start[3] - start[1];
						const left = Math.min(1 - w, Math.max(0, start[0] + dx));
						const top = Math.min(1 - h, Math.max(0, start[1] + dy));
						next = [left, top, left + w, top + h];
					}
					place(next);
				};
				const onUp = () => {
					frame.removeEventListener("pointermove", onMove);
					frame.removeEventListener("pointerup", onUp);
					this.setCrop(name, next.map((v) => Math.round(v * 10000) / 10000));
				};
				frame.addEventListener("pointermove", onMove);
				frame.addEventListener("pointerup", onUp);
			});
		}
		const aspect = el("select", { class: "hn-de-aspect", onchange: (e) => { this.aspect = e.target.value; } },
			Object.keys(ASPECTS).map((k) => el("option", { value: k, selected: k === this.aspect }, k)));
		const set = el("button", { class: "hn-de-crop-set", onclick: () => {
			const w = img.naturalWidth || 1, h = img.naturalHeight || 1;
			this.setCrop(name, this.defaultBox(w, h).map((v) => Math.round(v * 10000) / 10000));
		} }, box ? "Reset crop" : "Crop…");
		const clear = el("button", { class: "hn-de-crop-clear", disabled: !box, onclick: () => this.setCrop(name, null) }, "No crop");
		return el("div", { class: "hn-de-section" }, wrap, el("div", { class: "hn-de-row" }, "crop", aspect, set, clear));
	}

	async showRestorePoints() {
		const { points } = await call(`restore_points?${new URLSearchParams({ folder: this.folder })}`);
		const modal = el("div", { class: "hn-de-modal hn-de-restore" }, el("b", {}, "Restore points (one per save; newest first)"),
			points.length ? points.map((p) => el("div", { class: "hn-de-row" },
				`${new Date(p.created * 1000).toLocaleString()} · ${p.label} · ${p.captions} caption(s)${p.edits ? " + exclusions/crops" : ""}`,
				el("button", { "data-id": p.id, onclick: async () => {
					if (this.dirty && !window.confirm("Restoring drops your unsaved changes. Continue?")) return;
					await call("restore", { folder: this.folder, id: p.id });
					modal.remove();
					this.resetLocal();
					this.status(`restored ${p.id}`);
				} }, "Restore"))) : el("i", {}, "No saves yet."),
			el("button", { onclick: () => modal.remove() }, "Close"));
		this.root.append(modal);
	}

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

	showConflicts(conflicts, message) {
		const modal = el("div", { class: "hn-de-modal hn-de-conflicts" }, el("b", {}, message),
			el("div", {}, "These files were changed on disk (another tab or program) after you loaded them:"),
			conflicts.map((c) => el("div", {}, el("b", {}, c.name), c.kind === "caption"
				? ` — on disk now: “${c.current_text ?? "(no file)"}”; yours: “${c.your_text}”` : " — exclusions/crops")),
			el("div", { class: "hn-de-row" },
				el("button", { class: "hn-de-overwrite", onclick: () => { modal.remove(); this.save({ force: true }); } }, "Overwrite with mine"),
				el("button", { class: "hn-de-reload", onclick: () => { modal.remove(); this.resetLocal(); } }, "Discard mine, reload"),
				el("button", { onclick: () => modal.remove() }, "Cancel")));
		this.root.append(modal);
	}

	keydown(event) {
		const inField = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
		const ctrl = event.ctrlKey || event.metaKey;
		const key = event.key.toLowerCase();
		if (event.key === "Enter" && event.target.classList?.contains("hn-de-add")) {
			event.preventDefault();
			this.addFromInput(event.target);
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
			const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.columns(), ArrowDown: this.columns() }[event.key];
			this.move(step);
		} else if (!inField && event.key === "Enter") {
			event.preventDefault();
			this.detail.querySelector(".hn-de-add")?.focus();
		}
	}
}

// The host's shortcuts (Ctrl+S saves the workflow, Ctrl+Z undoes graph edits, q/h/r toggle panels)
// listen on window in the capture phase. This listener is added when the module is imported, before
// the host's extensions run init(), so while the editor is open it sees keys first, handles them
// and keeps them from the host. Typing still works: default actions are not prevented.
window.addEventListener("keydown", (event) => {
	if (!current?.root?.isConnected) return;
	current.keydown(event);
	event.stopImmediatePropagation();
}, true);

export function openDatasetEditor(options) {
	return new DatasetEditor(options).open();
}

// ------------------------------------------------------------ where a folder is known

function widgetValue(node, name) {
	return node?.widgets?.find((w) => w.name === name)?.value;
}

/** The Load Dataset node feeding `node` (itself, or upstream through `dataset` inputs). */
export function sourceLoadNode(node, seen = new Set()) {
	if (!node || seen.has(node.id)) return null;
	seen.add(node.id);
	if (node.type === "HypernetworkLoadDataset") return node;
	const input = node.inputs?.find((i) => i.name === "dataset");
	if (input?.link == null) return null;
	const link = node.graph?.links?.[input.link] ?? node.graph?.links?.get?.(input.link);
	return link ? sourceLoadNode(node.graph.getNodeById(link.origin_id), seen) : null;
}

export function editorOptionsFor(node) {
	const load = sourceLoadNode(node);
	if (!load) return null;
	const folder = widgetValue(load, "directory");
	if (!folder) return null;
	return { folder, captionExtension: widgetValue(load, "caption_extension") || ".txt",
		recursive: !!widgetValue(load, "recursive") };
}

function openFor(node) {
	const options = editorOptionsFor(node);
	if (!options) {
		window.alert("Set the Load Dataset node's directory first (and connect it to this node).");
		return null;
	}
	return openDatasetEditor(options);
}

function sidebarContent(element) {
	const input = el("input", { placeholder: "folder (relative to input, or absolute)", style: { width: "100%" } });
	const list = el("div", { style: { display: "flex", flexDirection: "column", gap: "4px", marginTop: "8px" } });
	const refresh = async () => {
		try {
			const data = await call("folders");
			list.replaceChildren(...data.folders.map((f) => el("button", { style: { textAlign: "left" },
				onclick: () => openDatasetEditor({ folder: f.folder }) }, `${f.folder} (${f.images})`)),
			el("small", { style: { opacity: 0.7 } }, `Allowed folders: ${data.roots.join(", ")}. More in ${data.config_file}.`));
		} catch (error) { list.replaceChildren(error.message); }
	};
	element.replaceChildren(el("div", { style: { padding: "8px", display: "flex", flexDirection: "column", gap: "6px" } },
		el("b", {}, "Hypernetwork datasets"), input,
		el("button", { onclick: () => input.value && openDatasetEditor({ folder: input.value }) }, "Edit dataset…"),
		el("button", { onclick: refresh }, "Refresh"), list));
	refresh();
}

app.registerExtension({
	name: "hypernetwork.datasetEditor",
	async setup() {
		window.hnDatasetEditor = { open: openDatasetEditor, current: () => current, splitTags };
		const manager = app.extensionManager;
		if (typeof manager?.registerSidebarTab === "function") {
			manager.registerSidebarTab({
				id: "hypernetwork-datasets", icon: "pi pi-images", title: "Hypernetwork datasets",
				tooltip: "Hypernetwork datasets: edit captions, crops and exclusions", type: "custom",
				render: (element) => sidebarContent(element),
			});
		}
	},
	async beforeRegisterNodeDef(nodeType, nodeData) {
		if (!NODE_TYPES.includes(nodeData.name)) return;
		chainMethod(nodeType.prototype, "onNodeCreated", function () {
			const button = this.addWidget("button", "Edit dataset…", null, () => openFor(this));
			button.name = BUTTON;
			button.label = "Edit dataset…";
			button.serialize = false;
			button.options = { ...(button.options ?? {}), serialize: false };
		});
		// the button holds no value: keep it out of the saved widgets_values (positions matter there)
		chainMethod(nodeType.prototype, "onSerialize", function (data) {
			const index = this.widgets?.findIndex((w) => w.name === BUTTON) ?? -1;
			const values = data?.widgets_values;
			if (index < 0 || !Array.isArray(values) || values.length !== this.widgets.length) return;
			values.splice(index, 1);
		});
	},
});
