// Small DOM and formatting helpers (instead of a framework: the pages are a few tables,
// forms and one SVG chart, rebuilt from JSON on each refresh).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function link(href, text, attrs = {}) {
  return h("a", { href, "data-nav": true, ...attrs }, text);
}

export const STATUS_COLORS = {
  Running: "#2f6fde",
  Pending: "#8a8f98",
  Completed: "#1f9d55",
  Failed: "#d64545",
  Terminated: "#a0522d",
  Suspended: "#c58b00",
  ContinuedAsNew: "#7b5cc4",
  Canceled: "#5d6470",
  Unknown: "#5d6470",
};

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function fmtAge(seconds) {
  return seconds === null || seconds === undefined ? "—" : fmtDuration(seconds * 1000);
}

export function relative(iso) {
  if (!iso) return "—";
  const ms = new Date(iso).getTime() - Date.now();
  return ms >= 0 ? `in ${fmtDuration(ms)}` : `${fmtDuration(-ms)} ago`;
}

export function pretty(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function jsonBlock(value, attrs = {}) {
  return h("pre", { class: "json", ...attrs }, pretty(value));
}

export function toast(message, kind = "ok") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), kind === "error" ? 8000 : 4000);
}

// A modal confirmation; `fields` are [{name, label, value, placeholder, multiline}]. Resolves to
// the field values (an object) or null when cancelled.
export function confirmDialog({ title, text, fields = [], ok = "Confirm", danger = true }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text || "";
  const okButton = document.getElementById("confirm-ok");
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "primary";
  const box = document.getElementById("confirm-fields");
  box.replaceChildren(
    ...fields.map((f) =>
      h("label", {}, f.label,
        f.multiline
          ? h("textarea", { name: f.name, rows: 4, placeholder: f.placeholder || "" }, f.value || "")
          : h("input", { name: f.name, value: f.value || "", placeholder: f.placeholder || "", required: f.required })),
    ),
  );
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue !== "ok") return resolve(null);
        const values = {};
        for (const el of box.querySelectorAll("input, textarea")) values[el.name] = el.value;
        resolve(values);
      },
      { once: true },
    );
  });
}

export function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : "";
}

export function localFromIso(value) {
  if (!value) return "";
  const d = new Date(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
