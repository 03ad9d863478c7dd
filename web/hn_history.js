// Reading node outputs back from the server's prompt history (GET /history), so that a training
// node's chart, status and preview survive a page reload. A helper module (no extension).
import { api } from "../../scripts/api.js";

const HISTORY_ITEMS = 200; // what the host's own history panel asks for
const SHARE_MS = 2000; // nodes restored together (one page load) share one request

let shared = null;

function fetchHistory() {
	if (!shared) {
		shared = api
			.fetchApi(`/history?max_items=${HISTORY_ITEMS}`, { cache: "no-store" })
			.then((response) => (response.ok ? response.json() : {}))
			.catch(() => ({}));
		setTimeout(() => (shared = null), SHARE_MS);
	}
	return shared;
}

/**
 * The newest `ui` output of node `nodeId` in the history, when that node had class `classType`
 * in that prompt (a different workflow may have used the same id); null when there is none.
 */
export async function lastOutputOf(nodeId, classType, key) {
	const history = await fetchHistory();
	const entries = Object.values(history ?? {}).sort((a, b) => (b?.prompt?.[0] ?? 0) - (a?.prompt?.[0] ?? 0));
	const id = String(nodeId);
	for (const entry of entries) {
		const output = entry?.outputs?.[id];
		if (!output || (key && !output[key])) continue;
		if (entry.prompt?.[2]?.[id]?.class_type !== classType) continue;
		return output;
	}
	return null;
}

/**
 * JSON.parse that accepts the bare NaN / Infinity tokens Python's json.dumps writes for
 * non-finite losses (they become null); strings are left untouched.
 */
export function parseLenientJSON(text) {
	try {
		return JSON.parse(text);
	} catch {
		const fixed = text.replace(/"(?:[^"\\]|\\.)*"|-?\bInfinity\b|\bNaN\b/g, (token) =>
			token.startsWith('"') ? token : "null"
		);
		return JSON.parse(fixed);
	}
}
