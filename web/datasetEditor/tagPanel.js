// The dataset editor's left panel: the filter (tags to include/exclude, caption text, uncaptioned,
// excluded), the bulk edit panel, and the tag counts of the dataset, the filtered images or the
// picked ones (click a tag to filter by it, Shift+click to hide its images).
import { bulkPanel } from "./bulk.js";
import { el } from "./dom.js";

const MAX_TAGS_SHOWN = 500;
const NO_FILTER = { include: [], exclude: [], text: "", uncaptioned: false, excluded: null };

const options = (current, pairs) => pairs.map(([value, text]) => el("option", { value, selected: value === current },
	text));

function filterChip(editor, tag, key) {
	const remove = () => editor.setFilter({ [key]: editor.filter[key].filter((t) => t !== tag) });
	return el("span", { class: `hn-de-chip ${key === "include" ? "inc" : "exc"}` }, tag,
		el("span", { class: "x", onclick: remove }, "×"));
}

function filterSection(editor) {
	const { filter } = editor;
	const search = el("input", { class: "hn-de-search", placeholder: "text in captions", value: filter.text });
	search.addEventListener("change", () => editor.setFilter({ text: search.value }));
	const mode = el("select", { class: "hn-de-mode", onchange: (e) => editor.setFilter({ mode: e.target.value }) },
		options(filter.mode, [["all", "all of (AND)"], ["any", "any of (OR)"]]));
	const uncaptioned = el("input", { type: "checkbox", class: "hn-de-uncaptioned", checked: filter.uncaptioned,
		onchange: (e) => editor.setFilter({ uncaptioned: e.target.checked }) });
	const shownValue = filter.excluded === null ? "" : filter.excluded ? "1" : "0";
	const shown = el("select", { class: "hn-de-shown",
		onchange: (e) => editor.setFilter({ excluded: e.target.value === "" ? null : e.target.value === "1" }) },
	options(shownValue, [["", "all images"], ["0", "included only"], ["1", "excluded only"]]));
	return el("div", { class: "hn-de-section" }, el("b", {}, "Filter"),
		el("div", { class: "hn-de-row" }, "with", mode),
		el("div", { class: "hn-de-chips hn-de-include" }, filter.include.map((t) => filterChip(editor, t, "include"))),
		el("div", { class: "hn-de-row" }, "without"),
		el("div", { class: "hn-de-chips hn-de-exclude" }, filter.exclude.map((t) => filterChip(editor, t, "exclude"))),
		search, el("label", { class: "hn-de-row" }, uncaptioned, "no caption only"), shown,
		el("button", { onclick: () => editor.setFilter({ ...NO_FILTER }) }, "Clear filter"));
}

function sortedCounts(editor) {
	const data = editor.lastListing;
	const counts = { dataset: data.tags, matched: data.matched_tags, selection: data.selection_tags ?? [] };
	const byCount = (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]);
	const byName = (a, b) => a[0].localeCompare(b[0]);
	return [...counts[editor.tagScope]].sort(editor.tagSort === "count" ? byCount : byName);
}

function tagRow(editor, tag, count) {
	const onclick = (event) => {
		const key = event.shiftKey || event.altKey ? "exclude" : "include";
		if (!editor.filter[key].includes(tag)) editor.setFilter({ [key]: [...editor.filter[key], tag] });
	};
	return el("div", { class: "hn-de-tag", "data-tag": tag, onclick,
		title: "click: show only images with this tag · shift+click: hide them" },
	el("span", {}, tag), el("span", {}, String(count)));
}

function tagsSection(editor) {
	const sorted = sortedCounts(editor);
	const find = el("input", { class: "hn-de-tagfind", placeholder: "find tag" });
	const list = el("div", { class: "hn-de-tags" });
	const fill = () => {
		const needle = find.value.toLowerCase();
		const shown = sorted.filter(([t]) => !needle || t.toLowerCase().includes(needle)).slice(0, MAX_TAGS_SHOWN);
		list.replaceChildren(...shown.map(([tag, count]) => tagRow(editor, tag, count)));
	};
	find.addEventListener("input", fill);
	fill();
	const picked = editor.picked.size;
	const scopes = [["dataset", "dataset"], ["matched", "filtered"], ...(picked ? [["selection", `selected (${picked})`]]
		: [])];
	const scope = el("select", { class: "hn-de-scope",
		onchange: (e) => { editor.tagScope = e.target.value; renderTagPanel(editor); } },
	options(editor.tagScope, scopes));
	const sort = el("select", { class: "hn-de-sort",
		onchange: (e) => { editor.tagSort = e.target.value; renderTagPanel(editor); } },
	options(editor.tagSort, [["count", "by count"], ["name", "by name"]]));
	return el("div", { class: "hn-de-section" }, el("div", { class: "hn-de-row" }, el("b", {}, "Tags"), scope, sort),
		find, list);
}

/** Redraw the left panel from the last listing (the bulk panel keeps its half-typed fields). */
export function renderTagPanel(editor) {
	if (!editor.lastListing) return;
	if (editor.tagScope === "selection" && !editor.picked.size) editor.tagScope = "matched";
	editor.side.replaceChildren(filterSection(editor), bulkPanel(editor), tagsSection(editor));
}
