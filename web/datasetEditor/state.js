// The dataset editor's unsaved state over what the server listed: caption edits (each remembers the
// file version it is based on, for conflict checks), exclusions and crop boxes, applied as
// undoable changes. No DOM and no server calls here (editor.js adds those).

export class EditState {
	constructor() {
		this.items = new Map(); // name -> {caption, version, has_caption} as last listed
		this.captions = new Map(); // unsaved caption text by name
		this.versions = new Map(); // caption version each unsaved edit is based on
		this.excluded = new Set();
		this.crops = {};
		this.editsVersion = null; // version of the exclusions/crops file the edits are based on
		this.editsLoaded = false;
		this.editsDirty = false;
		this.undoStack = [];
		this.redoStack = [];
	}

	caption(name) {
		return this.captions.has(name) ? this.captions.get(name) : (this.items.get(name)?.caption ?? "");
	}

	get dirty() {
		return this.captions.size > 0 || this.editsDirty;
	}

	/** Apply a change ({captions: {name: [before, after]}, excluded: {...}, crops: {...}}) forwards
	 * (direction 1) or backwards (-1). A caption back at its listed text is no longer an edit. */
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

	/** Apply `change` as a new undo step (the redo steps are dropped). */
	record(change, label) {
		change.label = label;
		this.applyChange(change, 1);
		this.undoStack.push(change);
		this.redoStack.length = 0;
	}

	/** Undo the last step; false when there is none. */
	undoStep() {
		const change = this.undoStack.pop();
		if (!change) return false;
		this.applyChange(change, -1);
		this.redoStack.push(change);
		return true;
	}

	/** Redo the last undone step; false when there is none. */
	redoStep() {
		const change = this.redoStack.pop();
		if (!change) return false;
		this.applyChange(change, 1);
		this.undoStack.push(change);
		return true;
	}

	/** Take in a list answer: the folder's exclusions and crops the first time, and the listed
	 * captions (except where an unsaved edit keeps the text and version it is based on). */
	absorb(data) {
		if (!this.editsLoaded && data.edits) {
			this.editsLoaded = true;
			this.editsVersion = data.edits_version;
			this.excluded = new Set(data.edits.excluded);
			this.crops = { ...data.edits.crops };
		}
		for (const item of data.items) {
			if (this.captions.has(item.name) && this.items.has(item.name)) continue;
			this.items.set(item.name, { caption: item.caption, version: item.version, has_caption: item.has_caption });
		}
	}

	/** What Save sends: every edited caption with its base version, and the edits file if changed. */
	saveBody(force) {
		const captions = [...this.captions].map(([name, text]) => ({ name, text, base: this.versions.get(name) ?? null }));
		const body = { captions, force };
		if (this.editsDirty) {
			body.edits = { excluded: [...this.excluded], crops: this.crops };
			body.edits_base = this.editsVersion;
		}
		return body;
	}

	/** After a successful save: the saved text is what is listed now; nothing is left to undo. */
	saved(result) {
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
	}

	/** Forget every unsaved change and everything listed (the next list reloads from disk). */
	forget() {
		this.captions.clear();
		this.versions.clear();
		this.items.clear();
		this.excluded.clear();
		this.crops = {};
		this.editsDirty = false;
		this.editsLoaded = false;
		this.undoStack.length = 0;
		this.redoStack.length = 0;
	}
}
