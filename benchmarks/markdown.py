"""``python -m benchmarks markdown results.json``: the main tables as Markdown, for docs/performance.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .report import OURS

__all__ = ["render"]


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(report: dict[str, Any]) -> str:
    lines = [
        "| workload | engine | wall s | orch/s | items/s | p50 ms | p95 ms | p99 ms | tx/orch | tx/item "
        "| CPU s/orch | CPU ms/item | peak RSS MiB | store CPU s | % of ceiling |",
        "|---|---|" + "---:|" * 13,
    ]
    for workload in report["workloads"]:
        for name, data in report["engines"].items():
            result = next((r for r in data.get("results", []) if r["workload"] == workload), None)
            if data.get("status") != "ok" or result is None or result.get("status") != "ok":
                reason = (result or data).get("reason", "")
                lines.append(f"| {workload} | {name} | n/a: {reason} |" + " |" * 12)
                continue
            tx = result.get("transactions") or {}
            lat = result.get("latency_ms") or {}
            fraction = result.get("ceiling_fraction")
            cells = [
                workload,
                name,
                _f(result["wall_seconds"], 2),
                _f(result["orchestrations_per_second"], 2),
                _f(result["items_per_second"]),
                _f(lat.get("p50")),
                _f(lat.get("p95")),
                _f(lat.get("p99")),
                _f(tx.get("per_orchestration")),
                _f(tx.get("per_item") or tx.get("per_activity"), 2),
                _f(result.get("cpu_seconds_per_orchestration"), 4),
                _f(result.get("cpu_ms_per_item"), 2),
                _f(result.get("peak_rss_mib")),
                _f(result.get("server_cpu_seconds"), 2),
                "-" if fraction is None else f"{fraction:.0%}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    ceiling = report.get("ceiling")
    if ceiling:
        first_level: dict[str, Any] = next(iter((ceiling.get("levels") or {}).values()), {})
        keys = list(first_level.get("ops_per_second", ceiling["ops_per_second"]))
        lines += ["", "| concurrency | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for level, data in (ceiling.get("levels") or {}).items():
            cpu = data.get("client_cpu_ms_per_op", {})
            lines.append(
                f"| {level} | "
                + " | ".join(f"{_f(data['ops_per_second'].get(k))} ({_f(cpu.get(k), 2)} ms CPU)" for k in keys)
                + " |"
            )
    if report.get("ratios"):
        lines += [
            "",
            f"| workload | peer | {OURS} throughput / peer | CPU / peer | p50 / peer |",
            "|---|---|---:|---:|---:|",
        ]
        for workload, peers in report["ratios"].items():
            for peer, values in peers.items():
                lines.append(
                    f"| {workload} | {peer} | {_f(values['throughput_ours_over_peer'], 3)} "
                    f"| {_f(values['cpu_ours_over_peer'], 2)} | {_f(values['p50_ours_over_peer'], 2)} |"
                )
    if report.get("targets"):
        lines += ["", "| target | limit | measured | met |", "|---|---:|---:|---|"]
        for row in report["targets"]:
            met = "yes" if row["met"] else "**no**"
            lines.append(f"| {row['target']} | {_f(row['limit'])} | {_f(row['measured'], 3)} | {met} |")
    return "\n".join(lines)


def main(path: str) -> None:
    print(render(json.loads(Path(path).read_text())))
