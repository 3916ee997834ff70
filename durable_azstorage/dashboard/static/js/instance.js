// One instance: state, payloads, failure, timeline and history, and every management action
// (through the management API routes, with the same key).

import { get, instanceUrl, request } from "./api.js";
import { navigate } from "./app.js";
import { renderTimeline } from "./timeline.js";
import { confirmDialog, fmtTime, h, jsonBlock, link, statusBadge, toast } from "./util.js";

const ACTIVE = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

export async function renderInstance(main, [instanceId]) {
  let timer = null;
  let tab = "timeline";
  async function load() {
    let data;
    try {
      data = await get(`/dashboard/api/instances/${encodeURIComponent(instanceId)}`);
    } catch (err) {
      main.replaceChildren(h("h1", {}, instanceId), h("div", { class: "error-box" }, err.message),
        link("/dashboard/instances", "← all instances"));
      return;
    }
    draw(data);
    clearTimeout(timer);
    if (ACTIVE.has(data.runtimeStatus)) timer = setTimeout(load, 3000);
  }

  function draw(d) {
    const status = d.runtimeStatus;
    const actions = [
      ["Raise event", raiseEvent, ACTIVE.has(status), false],
      ["Suspend", () => act("suspend", "Suspend"), status === "Running" || status === "Pending", true],
      ["Resume", () => act("resume", "Resume"), status === "Suspended", false],
      ["Terminate", () => act("terminate", "Terminate"), ACTIVE.has(status), true],
      ["Rewind", () => act("rewind", "Rewind"), status === "Failed", false],
      ["Restart", restart, Boolean(d.name), false],
      ["Purge", purge, true, true],
    ].map(([label, fn, enabled, danger]) =>
      h("button", { type: "button", class: danger ? "danger" : "primary", disabled: !enabled, onclick: fn, "data-action": label.toLowerCase().replace(" ", "-") }, label));
    const facts = [
      ["Name", d.name || "—"],
      ["Status", statusBadge(status)],
      ["Execution id", h("span", { class: "mono" }, d.executionId || "—")],
      ["Created", fmtTime(d.createdTime)],
      ["Last updated", fmtTime(d.lastUpdatedTime)],
      ["Completed", fmtTime(d.completedTime)],
      ["Generation", d.generation ?? 0],
      ["Parent", d.parentInstanceId ? link(`/dashboard/instances/${encodeURIComponent(d.parentInstanceId)}`, d.parentInstanceId, { id: "parent-link" }) : "—"],
    ];
    const panels = [
      h("section", { class: "panel" }, h("h3", {}, "Input"), jsonBlock(d.input, { id: "instance-input" })),
      h("section", { class: "panel" }, h("h3", {}, "Output"), jsonBlock(d.output, { id: "instance-output" })),
      h("section", { class: "panel" }, h("h3", {}, "Custom status"), jsonBlock(d.customStatus)),
    ];
    if (d.failure) {
      panels.unshift(h("section", { class: "panel failure", id: "failure" }, h("h3", {}, "Failure"),
        h("p", {}, h("b", {}, d.failure.errorType || "Error"), ": ", d.failure.message || ""),
        d.failure.stackTrace ? h("pre", { class: "json" }, d.failure.stackTrace) : null));
    }
    const tabs = h("div", { class: "tabs" },
      ["timeline", "history"].map((t) =>
        h("button", { type: "button", class: tab === t ? "tab active" : "tab", "data-tab": t, onclick: () => { tab = t; draw(d); } },
          t === "timeline" ? "Timeline" : `History (${d.history.length})`)));
    main.replaceChildren(
      h("div", { class: "crumbs" }, link("/dashboard/instances", "Instances"), " / "),
      h("h1", { class: "mono", id: "instance-id" }, d.instanceId),
      h("div", { class: "actions" }, actions),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "panels" }, panels),
      tabs,
      tab === "timeline" ? renderTimeline(d.timeline) : historyTable(d.history),
    );
  }

  async function act(verb, label) {
    const answer = await confirmDialog({
      title: `${label} ${instanceId}?`,
      fields: [{ name: "reason", label: "Reason", value: `${verb} from the dashboard` }],
      ok: label,
      danger: verb === "terminate" || verb === "suspend",
    });
    if (!answer) return;
    await run(() => request("POST", `${instanceUrl(instanceId)}/${verb}`, { params: { reason: answer.reason } }), `${label}: sent`);
  }

  async function raiseEvent() {
    const answer = await confirmDialog({
      title: `Raise an event to ${instanceId}`,
      fields: [
        { name: "event", label: "Event name", required: true, placeholder: "e.g. approval" },
        { name: "data", label: "Data (JSON)", value: "null", multiline: true },
      ],
      ok: "Raise event",
      danger: false,
    });
    if (!answer) return;
    try {
      JSON.parse(answer.data || "null");
    } catch {
      return toast("The event data is not valid JSON.", "error");
    }
    await run(() => request("POST", `${instanceUrl(instanceId)}/raiseEvent/${encodeURIComponent(answer.event)}`, { body: answer.data || "null" }),
      `Event ${answer.event} raised`);
  }

  async function restart() {
    const answer = await confirmDialog({
      title: `Restart ${instanceId}?`,
      text: "Starts the orchestration again with its original input.",
      fields: [{ name: "newId", label: "New instance id? (true / false)", value: "true" }],
      ok: "Restart",
      danger: false,
    });
    if (!answer) return;
    try {
      const body = await request("POST", `${instanceUrl(instanceId)}/restart`, { params: { restartWithNewInstanceId: answer.newId === "false" ? "false" : "true" } });
      toast("Restarted");
      if (body && body.id) navigate(`/dashboard/instances/${encodeURIComponent(body.id)}`);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function purge() {
    const answer = await confirmDialog({
      title: `Purge ${instanceId}?`,
      text: "Deletes its history, Instances row and large-message blobs. This cannot be undone.",
      ok: "Purge",
    });
    if (!answer) return;
    try {
      await request("DELETE", instanceUrl(instanceId));
      toast("Purged");
      navigate("/dashboard/instances");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function run(call, message) {
    try {
      await call();
      toast(message);
      clearTimeout(timer);
      timer = setTimeout(load, 500);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  await load();
  return () => clearTimeout(timer);
}

function historyTable(history) {
  const rows = history.map((e) => {
    const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !["EventType", "EventId", "Timestamp", "IsPlayed"].includes(k)));
    return h("tr", { "data-event-type": e.EventType },
      h("td", {}, e.EventId),
      h("td", {}, e.EventType),
      h("td", { title: e.Timestamp }, fmtTime(e.Timestamp), h("span", { class: "muted ms" }, e.Timestamp ? e.Timestamp.slice(19, 23) : "")),
      h("td", {}, h("code", { class: "details" }, JSON.stringify(rest))));
  });
  return h("div", { class: "table-wrap", id: "history" },
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["Id", "Event", "Timestamp", "Details"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
}
