// A small SVG line chart (status counts over time, transactions per minute): a chart library
// would be the biggest dependency of the page for two charts.

import { STATUS_COLORS, h, svg } from "./util.js";

export function lineChart(series, { width = 760, height = 200, id } = {}) {
  // series: [{name, color, points: [[timeMs, value], ...]}]
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return h("p", { class: "muted", id }, "No samples yet.");
  const pad = { l: 44, r: 10, t: 10, b: 22 };
  const xs = all.map((p) => p[0]);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) (x0 -= 30000), (x1 += 30000);
  const y1 = Math.max(1, ...all.map((p) => p[1]));
  const X = (t) => pad.l + ((t - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v) => height - pad.b - (v / y1) * (height - pad.t - pad.b);
  const grid = [0, 0.5, 1].map((f) => [
    svg("line", { x1: pad.l, x2: width - pad.r, y1: Y(f * y1), y2: Y(f * y1), class: "grid-line" }),
    svg("text", { x: pad.l - 6, y: Y(f * y1) + 4, "text-anchor": "end", class: "axis" }, Math.round(f * y1)),
  ]);
  const times = [x0, (x0 + x1) / 2, x1].map((t, i) =>
    svg("text", { x: X(t), y: height - 6, "text-anchor": ["start", "middle", "end"][i], class: "axis" },
      new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })));
  const lines = series.map((s) => {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    const dots = s.points.length === 1 ? svg("circle", { cx: X(s.points[0][0]), cy: Y(s.points[0][1]), r: 3, fill: s.color }) : null;
    return svg("g", { "data-series": s.name }, svg("path", { d, stroke: s.color, fill: "none", "stroke-width": 2 }), dots,
      svg("title", {}, `${s.name}: ${s.points.at(-1)[1]}`));
  });
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", id }, grid, times, lines);
  const legend = h("div", { class: "legend" },
    series.map((s) => h("span", {}, h("i", { class: "swatch", style: { background: s.color } }), `${s.name} ${s.points.at(-1)[1]}`)));
  return h("div", { class: "chart-box" }, chart, legend);
}

export function statusSeries(points) {
  const names = Object.keys(STATUS_COLORS).filter((n) => points.some((p) => (p.counts[n] || 0) > 0));
  return names.map((name) => ({
    name,
    color: STATUS_COLORS[name],
    points: points.map((p) => [new Date(p.time).getTime(), p.counts[name] || 0]),
  }));
}
