// The instances table: filters (server-side, through one table query), sorting of the rows
// on screen, continuation-token paging, auto-refresh and bulk terminate/purge.

import { get, post } from "./api.js";
import { navigate } from "./app.js";
import { confirmDialog, fmtDuration, fmtTime, h, isoFromLocal, link, localFromIso, statusBadge, toast } from "./util.js";

const STATUSES = ["Running", "Pending", "Completed", "Failed", "Terminated", "Suspended", "ContinuedAsNew", "Canceled"];
const FILTERS = ["status", "namePrefix", "instanceIdPrefix", "createdFrom", "createdTo", "updatedFrom", "updatedTo", "top", "includeEntities"];
const COLUMNS = [
  ["instanceId", "Instance id"],
  ["name", "Name"],
  ["runtimeStatus", "Status"],
  ["createdTime", "Created"],
  ["lastUpdatedTime", "Last updated"],
  ["duration", "Duration"],
  ["customStatus", "Custom status"],
];
const ACTIVE = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

// From creation to completion (to now while it runs); null when the row has no creation time.
function durationMs(r) {
  const start = Date.parse(r.createdTime);
  if (Number.isNaN(start)) return null;
  const end = r.completedTime ? Date.parse(r.completedTime) : ACTIVE.has(r.runtimeStatus) ? Date.now() : Date.parse(r.lastUpdatedTime);
  return Number.isNaN(end) ? null : Math.max(0, end - start);
}

export async function renderInstances(main, _args, params) {
  const state = {
    filters: Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""])),
    sort: params.get("sort") || "",
    dir: params.get("dir") || "asc",
    tokens: [null], // tokens[i] = continuation token of page i
    page: 0,
    rows: [],
    next: null,
    selected: new Set(),
    timer: null,
  };
  if (!state.filters.top) state.filters.top = "50";

  const table = h("table", { class: "grid", id: "instances-table" });
  const pager = h("div", { class: "pager" });
  const bulkBar = h("div", { class: "bulk" });
  const auto = h("input", { type: "checkbox", id: "auto-refresh" });
  main.append(
    h("h1", {}, "Instances"),
    filterForm(state, (filters) => {
      const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
      if (state.sort) query.set("sort", state.sort), query.set("dir", state.dir);
      navigate(`/dashboard/instances${query.toString() ? "?" + query : ""}`, { replace: true });
    }),
    h("div", { class: "toolbar" },
      h("label", { class: "inline" }, auto, " Auto-refresh (5 s)"),
      h("button", { type: "button", class: "secondary", onclick: () => load() }, "Refresh"),
      bulkBar),
    h("div", { class: "table-wrap" }, table),
    pager,
  );

  async function load() {
    const query = { ...state.filters, continuationToken: state.tokens[state.page] || "" };
    const data = await get("/dashboard/api/instances", query);
    state.rows = data.instances;
    state.next = data.continuationToken;
    state.tokens[state.page + 1] = data.continuationToken;
    const visible = new Set(state.rows.map((r) => r.instanceId));
    for (const id of [...state.selected]) if (!visible.has(id)) state.selected.delete(id);
    draw();
  }

  function sorted() {
    if (!state.sort) return state.rows;
    const factor = state.dir === "desc" ? -1 : 1;
    if (state.sort === "duration") return [...state.rows].sort((a, b) => factor * ((durationMs(a) ?? -1) - (durationMs(b) ?? -1)));
    return [...state.rows].sort((a, b) => factor * String(a[state.sort] ?? "").localeCompare(String(b[state.sort] ?? "")));
  }

  function draw() {
    const all = h("input", {
      type: "checkbox",
      title: "Select all on this page",
      checked: state.rows.length > 0 && state.selected.size === state.rows.length,
      onchange: (e) => {
        state.selected = new Set(e.target.checked ? state.rows.map((r) => r.instanceId) : []);
        draw();
      },
    });
    const head = h("tr", {}, h("th", { class: "check" }, all),
      COLUMNS.map(([key, label]) =>
        h("th", {
          class: "sortable" + (state.sort === key ? ` sorted-${state.dir}` : ""),
          title: "Sort the rows of this page",
          "data-column": key,
          onclick: () => {
            state.dir = state.sort === key && state.dir === "asc" ? "desc" : "asc";
            state.sort = key;
            draw();
          },
        }, label)));
    const body = sorted().map((r) =>
      h("tr", { "data-instance-id": r.instanceId },
        h("td", { class: "check" }, h("input", {
          type: "checkbox",
          checked: state.selected.has(r.instanceId),
          "aria-label": `select ${r.instanceId}`,
          onchange: (e) => {
            e.target.checked ? state.selected.add(r.instanceId) : state.selected.delete(r.instanceId);
            drawBulk();
          },
        })),
        h("td", { class: "mono" }, link(`/dashboard/instances/${encodeURIComponent(r.instanceId)}`, r.instanceId)),
        h("td", {}, r.name || "—"),
        h("td", {}, statusBadge(r.runtimeStatus)),
        h("td", { title: r.createdTime }, fmtTime(r.createdTime)),
        h("td", { title: r.lastUpdatedTime }, fmtTime(r.lastUpdatedTime)),
        h("td", { class: "nowrap", "data-duration": durationMs(r) ?? "" }, fmtDuration(durationMs(r))),
        h("td", { class: "preview" }, r.customStatus ?? ""),
      ));
    table.replaceChildren(h("thead", {}, head),
      h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No instances match."))));
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", disabled: state.page === 0, onclick: () => go(0) }, "First"),
      h("button", { type: "button", class: "secondary", disabled: state.page === 0, onclick: () => go(state.page - 1) }, "Previous"),
      h("span", { class: "page-no" }, `Page ${state.page + 1} · ${state.rows.length} rows`),
      h("button", { type: "button", class: "secondary", id: "next-page", disabled: !state.next, onclick: () => go(state.page + 1) }, "Next"),
    );
    drawBulk();
  }

  function drawBulk() {
    const n = state.selected.size;
    bulkBar.replaceChildren(
      h("span", { class: "muted" }, n ? `${n} selected` : "Select rows for bulk actions"),
      h("button", { type: "button", class: "danger", disabled: !n, onclick: () => bulk("terminate") }, "Terminate selected"),
      h("button", { type: "button", class: "danger", disabled: !n, onclick: () => bulk("purge") }, "Purge selected"),
    );
  }

  async function bulk(action) {
    const ids = [...state.selected];
    const answer = await confirmDialog({
      title: `${action === "purge" ? "Purge" : "Terminate"} ${ids.length} instance(s)?`,
      text: action === "purge"
        ? "Their history, Instances rows and large-message blobs are deleted. This cannot be undone."
        : "Each running instance gets a terminate message.",
      fields: action === "terminate" ? [{ name: "reason", label: "Reason", value: "terminated from the dashboard" }] : [],
      ok: action === "purge" ? "Purge" : "Terminate",
    });
    if (!answer) return;
    try {
      const { results } = await post("/dashboard/api/instances/bulk", { action, instanceIds: ids, reason: answer.reason });
      const failed = results.filter((r) => !r.ok);
      toast(failed.length ? `${failed.length} failed: ${failed[0].error}` : `${action}: ${results.length} done`, failed.length ? "error" : "ok");
      state.selected.clear();
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function go(page) {
    state.page = page;
    try {
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  auto.addEventListener("change", () => {
    clearInterval(state.timer);
    if (auto.checked) state.timer = setInterval(() => load().catch((e) => toast(e.message, "error")), 5000);
  });
  await load();
  return () => clearInterval(state.timer);
}

function filterForm(state, apply) {
  const f = state.filters;
  const chosen = new Set(f.status.split(",").filter(Boolean));
  const chips = STATUSES.map((s) =>
    h("label", { class: "chip" }, h("input", { type: "checkbox", name: "status", value: s, checked: chosen.has(s) }), s));
  const input = (name, placeholder) => h("input", { name, value: f[name], placeholder });
  const when = (name) => h("input", { type: "datetime-local", name, value: localFromIso(f[name]) });
  const form = h("form", { class: "filters", id: "instance-filters" },
    h("div", { class: "chips" }, chips),
    h("div", { class: "row" },
      h("label", {}, "Name starts with", input("namePrefix", "e.g. hello_")),
      h("label", {}, "Instance id starts with", input("instanceIdPrefix", "e.g. order-")),
      h("label", {}, "Created from", when("createdFrom")),
      h("label", {}, "to", when("createdTo")),
      h("label", {}, "Updated from", when("updatedFrom")),
      h("label", {}, "to", when("updatedTo")),
      h("label", {}, "Page size",
        h("select", { name: "top" }, ["20", "50", "100", "500"].map((n) => h("option", { value: n, selected: f.top === n }, n)))),
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "includeEntities", checked: f.includeEntities === "true" }), " entities too"),
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "button", class: "secondary", onclick: () => apply({ top: f.top }) }, "Clear"),
    ));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    apply({
      status: data.getAll("status").join(","),
      namePrefix: data.get("namePrefix").trim(),
      instanceIdPrefix: data.get("instanceIdPrefix").trim(),
      createdFrom: isoFromLocal(data.get("createdFrom")),
      createdTo: isoFromLocal(data.get("createdTo")),
      updatedFrom: isoFromLocal(data.get("updatedFrom")),
      updatedTo: isoFromLocal(data.get("updatedTo")),
      top: data.get("top"),
      includeEntities: data.get("includeEntities") ? "true" : "",
    });
  });
  return form;
}
