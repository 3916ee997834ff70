// The Gantt timeline of one instance: one row per activity, timer, sub-orchestration and
// event wait, positioned on a shared time axis (HTML, so rows stay readable and clickable).

import { fmtDuration, h, link } from "./util.js";

const KIND_LABELS = {
  activity: "activity",
  timer: "timer",
  suborchestration: "sub-orchestration",
  event: "event",
  waiting: "waiting",
};

export function renderTimeline(timeline) {
  const bars = timeline.bars;
  if (!bars.length) return h("p", { class: "muted", id: "timeline" }, "No activities, timers, sub-orchestrations or events yet.");
  const t0 = new Date(timeline.start).getTime();
  const ends = bars.map((b) => new Date(b.end || timeline.now).getTime());
  const t1 = Math.max(new Date(timeline.end || timeline.now).getTime(), ...ends);
  const span = Math.max(1, t1 - t0);
  const pct = (t) => ((t - t0) / span) * 100;
  const rows = bars.map((b) => {
    const start = new Date(b.start).getTime();
    const end = new Date(b.end || timeline.now).getTime();
    const left = pct(start);
    const width = Math.max(0.4, pct(end) - left);
    const title = `${KIND_LABELS[b.kind]} ${b.name}: ${b.status}, ${fmtDuration(b.durationMs)}${b.open ? " so far" : ""}${b.detail ? "\n" + b.detail : ""}${b.fireAt ? "\nfires at " + b.fireAt : ""}`;
    const name = b.kind === "suborchestration" && b.instanceId
      ? link(`/dashboard/instances/${encodeURIComponent(b.instanceId)}`, b.name, { title: `open ${b.instanceId}` })
      : b.name;
    return h("div", { class: "tl-row", "data-kind": b.kind, "data-status": b.status },
      h("div", { class: "tl-label" }, h("span", { class: `kind kind-${b.kind}` }, KIND_LABELS[b.kind]), " ", name),
      h("div", { class: "tl-track" },
        h("div", {
          class: `tl-bar bar-${b.status}${b.open ? " open" : ""}`,
          style: { left: `${left}%`, width: `${width}%` },
          title,
          "data-duration-ms": b.durationMs,
        }),
        h("span", { class: "tl-dur", style: left > 70 ? { right: `${100 - left + 0.5}%` } : { left: `calc(${left + width}% + 4px)` } },
          fmtDuration(b.durationMs) + (b.status === "failed" ? " · failed" : "")),
      ));
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { class: "tl-tick", style: { left: `${f * 100}%` } }, "+" + fmtDuration(f * span)));
  return h("div", { class: "timeline", id: "timeline" },
    h("div", { class: "tl-row tl-axis" }, h("div", { class: "tl-label muted" }, `${bars.length} bars`), h("div", { class: "tl-track" }, ticks)),
    rows,
    h("div", { class: "legend" },
      ["completed", "failed", "running", "scheduled", "canceled"].map((s) => h("span", {}, h("i", { class: `swatch bar-${s}` }), s))));
}
