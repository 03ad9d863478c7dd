// A caption's tags: the browser's copy of hypernet/util/caption_tags.py (split at top-level commas,
// brackets group, backslash escapes, whitespace tidied, empty tags dropped). Both are checked
// against tests/cases/split_tags.json. No imports, so node can run it too.

/** Split a caption into tags at top-level commas. */
export function splitTags(caption) {
	const tags = [];
	let depth = 0;
	let start = 0;
	let escaped = false;
	for (let i = 0; i < caption.length; i++) {
		const ch = caption[i];
		if (escaped) escaped = false;
		else if (ch === "\\") escaped = true;
		else if ("([{".includes(ch)) depth++;
		else if (")]}".includes(ch)) depth = Math.max(0, depth - 1);
		else if (ch === "," && depth === 0) {
			tags.push(caption.slice(start, i));
			start = i + 1;
		}
	}
	tags.push(caption.slice(start));
	return tags.map((t) => t.replace(/\s+/g, " ").trim()).filter(Boolean);
}

/** A caption from tags, separated by ", " (the form taggers and A1111 write). */
export const joinTags = (tags) => tags.join(", ");
