// Entities: a paged list with a state preview, one entity's state and lock, signals (through
// the management API's /entities route) and clean-up of entity storage.

import { MGMT, get, post, request } from "./api.js";
import { confirmDialog, fmtTime, h, jsonBlock, link, toast } from "./util.js";

const entityHref = (e) => `/dashboard/entities/${encodeURIComponent(e.name)}/${encodeURIComponent(e.key === "" ? "$" : e.key)}`;

export async function renderEntities(main, _args, params) {
  const state = { name: params.get("name") || "", tokens: [null], page: 0 };
  const table = h("table", { class: "grid", id: "entities-table" });
  const pager = h("div", { class: "pager" });
  const nameInput = h("input", { name: "name", value: state.name, placeholder: "entity name, e.g. counter" });
  const form = h("form", { class: "filters row" }, h("label", {}, "Entity name", nameInput), h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = nameInput.value.trim().toLowerCase();
    history.replaceState(null, "", `/dashboard/entities${name ? "?name=" + encodeURIComponent(name) : ""}`);
    Object.assign(state, { name, tokens: [null], page: 0 });
    load().catch((err) => toast(err.message, "error"));
  });
  main.append(h("h1", {}, "Entities"), form,
    h("div", { class: "toolbar" }, h("button", { type: "button", class: "danger", id: "clean-entities", onclick: clean }, "Clean entity storage")),
    h("div", { class: "table-wrap" }, table), pager);

  async function load() {
    const data = await get("/dashboard/api/entities", { name: state.name, continuationToken: state.tokens[state.page] || "" });
    state.tokens[state.page + 1] = data.continuationToken;
    table.replaceChildren(
      h("thead", {}, h("tr", {}, ["Name", "Key", "Last operation", "Locked by", "Queued", "State"].map((c) => h("th", {}, c)))),
      h("tbody", {}, data.entities.length ? data.entities.map((e) =>
        h("tr", { "data-entity": e.instanceId },
          h("td", {}, e.name),
          h("td", { class: "mono" }, link(entityHref(e), e.key === "" ? "(empty key)" : e.key)),
          h("td", {}, fmtTime(e.lastOperationTime)),
          h("td", { class: "mono" }, e.lockedBy ? link(`/dashboard/instances/${encodeURIComponent(e.lockedBy)}`, e.lockedBy) : "—"),
          h("td", {}, e.backlogQueueSize),
          h("td", { class: "preview mono" }, e.state ?? h("span", { class: "muted" }, "no state")))) :
        h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No entities."))));
    pager.replaceChildren(
      h("button", { type: "button", class: "secondary", disabled: state.page === 0, onclick: () => go(state.page - 1) }, "Previous"),
      h("span", { class: "page-no" }, `Page ${state.page + 1}`),
      h("button", { type: "button", class: "secondary", disabled: !data.continuationToken, onclick: () => go(state.page + 1) }, "Next"));
  }
  function go(page) {
    state.page = page;
    load().catch((err) => toast(err.message, "error"));
  }
  async function clean() {
    const ok = await confirmDialog({
      title: "Clean entity storage?",
      text: "Removes entities that have no state, no lock and no queued operation, and releases locks held by orchestrations that are no longer running.",
      ok: "Clean",
    });
    if (!ok) return;
    try {
      const r = await post("/dashboard/api/entities/clean", {});
      toast(`Removed ${r.emptyEntitiesRemoved} empty entities, released ${r.orphanedLocksReleased} orphaned locks`);
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  }
  await load();
}

export async function renderEntity(main, [name, key]) {
  let timer = null;
  async function load() {
    let e;
    try {
      e = await get(`/dashboard/api/entities/${encodeURIComponent(name)}/${encodeURIComponent(key)}`);
    } catch (err) {
      main.replaceChildren(h("h1", {}, `@${name}@${key}`), h("div", { class: "error-box" }, err.message), link("/dashboard/entities", "← all entities"));
      return null;
    }
    main.replaceChildren(
      h("div", { class: "crumbs" }, link("/dashboard/entities", "Entities"), " / ", link(`/dashboard/entities?name=${encodeURIComponent(e.name)}`, e.name), " /"),
      h("h1", { class: "mono", id: "entity-id" }, e.instanceId),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", "data-action": "signal", onclick: () => signal(e) }, "Signal operation"),
        h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")),
      h("dl", { class: "facts" },
        h("dt", {}, "Name"), h("dd", {}, e.name),
        h("dt", {}, "Key"), h("dd", { class: "mono" }, e.key),
        h("dt", {}, "Last operation"), h("dd", {}, fmtTime(e.lastOperationTime)),
        h("dt", {}, "Locked by"), h("dd", { id: "entity-lock" }, e.lockedBy ? link(`/dashboard/instances/${encodeURIComponent(e.lockedBy)}`, e.lockedBy) : "not locked"),
        h("dt", {}, "Queued operations"), h("dd", {}, e.backlogQueueSize)),
      h("section", { class: "panel" }, h("h3", {}, "State"), e.exists ? jsonBlock(e.state, { id: "entity-state" }) : h("p", { class: "muted", id: "entity-state" }, "no state")),
    );
    return e;
  }
  async function signal(e) {
    const answer = await confirmDialog({
      title: `Signal ${e.instanceId}`,
      fields: [
        { name: "op", label: "Operation", required: true, placeholder: "e.g. add" },
        { name: "input", label: "Input (JSON, empty for none)", value: "", multiline: true },
      ],
      ok: "Signal",
      danger: false,
    });
    if (!answer) return;
    if (answer.input) {
      try {
        JSON.parse(answer.input);
      } catch {
        return toast("The input is not valid JSON.", "error");
      }
    }
    try {
      await request("POST", `${MGMT}/entities/${encodeURIComponent(e.name)}/${encodeURIComponent(e.key === "" ? "$" : e.key)}`,
        { params: { op: answer.op }, body: answer.input || undefined });
      toast(`Signalled ${answer.op}`);
      followUp(e.lastOperationTime, 30);
    } catch (err) {
      toast(err.message, "error");
    }
  }
  // After a signal: re-read every second until the entity's last operation time moves (or 30 s).
  function followUp(before, tries) {
    clearTimeout(timer);
    if (tries <= 0) return;
    timer = setTimeout(async () => {
      const current = await load();
      if (!current || current.lastOperationTime === before) followUp(before, tries - 1);
    }, 1000);
  }
  await load();
  return () => clearTimeout(timer);
}
