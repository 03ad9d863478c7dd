// The dataset editor's client of the server routes /hypernetwork/dataset/* (nodes/dataset_routes.py).
import { api } from "../../../scripts/api.js";

const ROUTE = "/hypernetwork/dataset";

/** GET `route` (no body) or POST `body` as JSON; a failed answer throws with the server's message,
 * its HTTP `status` and any `conflicts`. */
export async function call(route, body) {
	const init = body === undefined ? { cache: "no-store" } : {
		method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
	};
	const response = await api.fetchApi(`${ROUTE}/${route}`, init);
	const data = await response.json().catch(() => ({}));
	if (!response.ok) {
		const error = new Error(data.error ?? `HTTP ${response.status}`);
		error.status = response.status;
		error.conflicts = data.conflicts;
		throw error;
	}
	return data;
}

function thumbnailQuery(folder, name, size) {
	return `thumbnail?${new URLSearchParams({ folder, name, size: String(size) })}`;
}

/** The URL of an image's thumbnail (a JPEG of at most `size` pixels). */
export function thumbUrl(folder, name, size) {
	return api.apiURL(`${ROUTE}/${thumbnailQuery(folder, name, size)}`);
}

/** Why a thumbnail did not load: the server's message for it. */
export async function thumbnailError(folder, name, size) {
	try {
		await call(thumbnailQuery(folder, name, size));
		return "the image could not be shown";
	} catch (error) {
		return error.message;
	}
}

export const listFolder = (body) => call("list", body);
export const bulkEdit = (body) => call("bulk", body);
export const saveEdits = (body) => call("save", body);
export const vocabulary = () => call("vocabulary");
export const folders = () => call("folders");
export const restorePoints = (folder) => call(`restore_points?${new URLSearchParams({ folder })}`);
export const restore = (folder, id) => call("restore", { folder, id });
