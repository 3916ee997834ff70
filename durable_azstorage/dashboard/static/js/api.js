// The dashboard's HTTP calls: its own JSON API (/dashboard/api) and the management API
// (/runtime/webhooks/durabletask) for actions. The key (when the server has one) is kept in
// sessionStorage for this tab and sent as x-functions-key.

const KEY = "durable-azstorage-key";
export const MGMT = "/runtime/webhooks/durabletask";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

(function takeKeyFromUrl() {
  const url = new URL(window.location.href);
  const code = url.searchParams.get("code");
  if (code) {
    sessionStorage.setItem(KEY, code);
    url.searchParams.delete("code");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();

let pending = 0;
function busy(delta) {
  pending += delta;
  const el = document.getElementById("busy");
  if (el) el.hidden = pending <= 0;
}

async function askForKey() {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  input.value = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (input.value) sessionStorage.setItem(KEY, input.value);
  return Boolean(input.value);
}

export async function request(method, path, { body, json, params } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers["x-functions-key"] = key;
    let payload;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = body;
    }
    busy(1);
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload });
    } catch (err) {
      throw new ApiError(0, `cannot reach the server: ${err.message}`);
    } finally {
      busy(-1);
    }
    if (response.status === 401 && (await askForKey())) continue;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) {
      const message = (data && data.Message) || (typeof data === "string" && data) || response.statusText;
      throw new ApiError(response.status, message);
    }
    return data;
  }
  throw new ApiError(401, "a valid key is required");
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, json, params) => request("POST", path, { json, params });

export const instanceUrl = (id) => `${MGMT}/instances/${encodeURIComponent(id)}`;
