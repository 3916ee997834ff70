// The hub overview: health, status counts (and their chart), partitions with their control
// queues, the work-item queue, storage transactions and the poison quarantine.

import { get, post } from "./api.js";
import { lineChart, statusSeries } from "./chart.js";
import { confirmDialog, fmtAge, fmtTime, h, link, relative, statusBadge, toast } from "./util.js";

export async function renderOverview(main) {
  let timer = null;
  let recount = null;
  async function load() {
    const [data, poison] = await Promise.all([get("/dashboard/api/overview"), get("/dashboard/api/poison")]);
    draw(data, poison.messages);
    // The server is recounting statuses in the background (a large hub takes seconds): ask again soon.
    clearTimeout(recount);
    if (data.counting) recount = setTimeout(() => load().catch((e) => toast(e.message, "error")), 1500);
  }
  function draw(d, poison) {
    const total = Object.values(d.statusCounts).reduce((a, b) => a + b, 0);
    main.replaceChildren(
      h("h1", {}, "Overview ", h("span", { class: "muted small" }, `task hub ${d.taskHub} · counted ${fmtTime(d.countedAt)}${d.counting ? " · recounting…" : ""}`)),
      h("section", { class: "panel health", id: "health" }, h("h3", {}, "Health"),
        h("ul", {}, d.health.map((f) => h("li", { class: `finding ${f.level}` },
          f.link ? h("a", { href: f.link, "data-nav": f.link.startsWith("/") || undefined }, h("b", {}, f.title)) : h("b", {}, f.title),
          f.detail ? ` — ${f.detail}` : "")))),
      h("div", { class: "cards", id: "status-counts" },
        h("div", { class: "card" }, h("div", { class: "num" }, total), h("div", {}, "orchestrations")),
        Object.entries(d.statusCounts).filter(([, n]) => n > 0).map(([status, n]) =>
          h("a", { class: "card", href: `/dashboard/instances?status=${status}`, "data-nav": true, "data-status": status },
            h("div", { class: "num" }, n), statusBadge(status)))),
      h("section", { class: "panel" }, h("h3", {}, "Instances by status over time ",
        h("span", { class: "muted small" }, `sampled every ${d.sampleIntervalSeconds} s while this server runs`)),
        lineChart(statusSeries(d.series), { id: "status-chart" })),
      h("div", { class: "two" },
        h("section", { class: "panel" }, h("h3", {}, "Work-item queue"),
          h("dl", { class: "facts", id: "work-items" },
            h("dt", {}, "Queue"), h("dd", { class: "mono" }, d.workItems.queue),
            h("dt", {}, "Messages"), h("dd", {}, d.workItems.depth),
            h("dt", {}, "Oldest visible message"), h("dd", {}, fmtAge(d.workItems.oldestAgeSeconds)))),
        h("section", { class: "panel", id: "transactions" }, h("h3", {}, "Storage transactions per minute"),
          d.transactions.total === null
            ? h("p", { class: "muted" }, "Not counted by this server.")
            : [
                h("p", {}, `${d.transactions.total} transactions by this process so far `,
                  h("span", { class: "muted" }, Object.entries(d.transactions.byService).map(([k, v]) => `${k} ${v}`).join(" · "))),
                lineChart([{ name: "per minute", color: "#2f6fde", points: d.transactions.perMinute.map((p) => [new Date(p.time).getTime(), p.perMinute]) }],
                  { height: 120, id: "transactions-chart" }),
              ])),
      h("section", { class: "panel" }, h("h3", {}, `Partitions (${d.partitions.length})`),
        h("div", { class: "table-wrap" }, h("table", { class: "grid", id: "partitions" },
          h("thead", {}, h("tr", {}, ["Control queue", "Owner", "Next owner", "Lease expires", "Messages", "Oldest message"].map((c) => h("th", {}, c)))),
          h("tbody", {}, d.partitions.map((p) =>
            h("tr", {},
              h("td", { class: "mono" }, p.partition),
              h("td", {}, p.owner || h("span", { class: "muted" }, "none")),
              h("td", {}, p.nextOwner || "—"),
              h("td", { class: p.leaseExpired ? "warn" : "", title: p.leaseExpires || "" }, p.leaseExpires ? relative(p.leaseExpires) : "—"),
              h("td", {}, p.depth),
              h("td", {}, fmtAge(p.oldestAgeSeconds)))))))),
      poisonPanel(d.poisonCount, poison),
    );
  }
  function poisonPanel(count, messages) {
    const rows = messages.map((m) =>
      h("tr", { "data-message-id": m.messageId },
        h("td", { class: "mono" }, m.queue),
        h("td", { class: "mono" }, m.messageId),
        h("td", { class: "mono" }, m.instanceId ? link(`/dashboard/instances/${encodeURIComponent(m.instanceId)}`, m.instanceId) : "—"),
        h("td", {}, m.eventType || "—"),
        h("td", {}, m.reason),
        h("td", {}, fmtTime(m.quarantinedAt)),
        h("td", { class: "nowrap" },
          h("button", { type: "button", class: "primary", "data-action": "requeue", onclick: () => resolve(m, true) }, "Requeue"),
          h("button", { type: "button", class: "danger", "data-action": "drop", onclick: () => resolve(m, false) }, "Drop"))));
    return h("section", { class: "panel", id: "poison" }, h("h3", {}, `Poison messages (${count})`),
      rows.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "grid" },
            h("thead", {}, h("tr", {}, ["Queue", "Message id", "Instance", "Event", "Reason", "Quarantined", ""].map((c) => h("th", {}, c)))),
            h("tbody", {}, rows)))
        : h("p", { class: "muted" }, "No quarantined messages."));
  }
  async function resolve(m, requeue) {
    const answer = await confirmDialog({
      title: `${requeue ? "Requeue" : "Drop"} message ${m.messageId}?`,
      text: requeue ? `It goes back on ${m.queue} unchanged; fix the cause first or it may be quarantined again.`
        : "The message is deleted for good.",
      ok: requeue ? "Requeue" : "Drop",
      danger: !requeue,
    });
    if (!answer) return;
    try {
      await post(`/dashboard/api/poison/${requeue ? "requeue" : "drop"}`, { queue: m.queue, messageId: m.messageId });
      toast(`${requeue ? "Requeued" : "Dropped"} ${m.messageId}`);
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  }
  await load();
  timer = setInterval(() => load().catch((e) => toast(e.message, "error")), 10000);
  return () => {
    clearInterval(timer);
    clearTimeout(recount);
  };
}
