"""Render spans exported by the OpenTelemetry console exporter (JSON) as an SVG timeline.

Used for docs/observability.md where no trace UI (Jaeger, Zipkin) can be installed:
``python scripts/trace_timeline.py spans.json out.svg`` then any browser renders the SVG.
Spans are drawn as bars, children under their parent, one trace per file.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any


def _spans(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    out, index = [], 0
    while (start := text.find("{", index)) >= 0:
        try:
            value, index = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, dict) and "context" in value:
            out.append(value)
    return out


def _time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _ordered(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["context"]["span_id"] for s in spans}
    for span in spans:
        parent = span.get("parent_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    rows: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["start_time"]):
            rows.append((depth, span))
            walk(span["context"]["span_id"], depth + 1)

    walk(None, 0)
    return rows


def render(spans: list[dict[str, Any]]) -> str:
    rows = _ordered(spans)
    t0 = min(_time(s["start_time"]) for s in spans)
    t1 = max(_time(s["end_time"]) for s in spans)
    width, label, row_h = 1200, 330, 22
    scale = (width - label - 20) / max(t1 - t0, 1e-6)
    colors = {"orchestration": "#4e79a7", "activity": "#59a14f", "timer": "#f28e2b", "event": "#b07aa1"}
    height = row_h * (len(rows) + 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>']
    parts.append(f'<text x="8" y="16" font-weight="bold">trace {escape(spans[0]["context"]["trace_id"])} — '
                 f'{len(spans)} spans, {t1 - t0:.2f} s</text>')
    for i, (depth, span) in enumerate(rows, start=1):
        y = row_h * i + 8
        start, end = _time(span["start_time"]), _time(span["end_time"])
        kind = span.get("attributes", {}).get("durabletask.type", "")
        error = span.get("status", {}).get("status_code") == "ERROR"
        color = "#e15759" if error else colors.get(kind, "#9c755f")
        x = label + (start - t0) * scale
        w = max((end - start) * scale, 2)
        parts.append(f'<text x="{8 + 12 * depth}" y="{y + 14}">{escape(span["name"])}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" rx="2"/>')
        text_x = x + w + 4 if x + w + 70 < width else x - 64
        parts.append(f'<text x="{text_x:.1f}" y="{y + 14}" fill="#555">{(end - start) * 1000:.0f} ms</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    spans = _spans(source.read_text(encoding="utf-8"))
    if len(sys.argv) > 3:  # keep one trace
        spans = [s for s in spans if s["context"]["trace_id"] == sys.argv[3]]
    target.write_text(render(spans), encoding="utf-8")


if __name__ == "__main__":
    main()
