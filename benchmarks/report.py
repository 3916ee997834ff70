"""Derived figures (fraction of the storage ceiling, peer ratios, targets) and the printed tables.

Tables use ``rich`` (already a dependency of the CLI): aligned columns, wrapping and plain
ASCII output when stdout is not a terminal, with no formatting code of our own to maintain.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from .ceiling import implied_seconds

__all__ = ["derive", "print_report"]

OURS = "durable_azstorage"


def _ok(result: dict[str, Any] | None) -> bool:
    return bool(result) and result.get("status") == "ok"  # type: ignore[union-attr]


def _by_workload(engine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["workload"]: r for r in engine.get("results", [])}


def _counts(result: dict[str, Any]) -> Counter[tuple[str, str]]:
    ops = (result.get("transactions") or {}).get("by_operation") or {}
    counts: Counter[tuple[str, str]] = Counter()
    for key, value in ops.items():
        service, _, operation = key.partition(".")
        counts[(service, operation)] = value
    return counts


def derive(report: dict[str, Any]) -> None:
    """Adds ``ceiling_fraction`` to our results, ``ratios`` and ``targets`` to the report."""
    engines = report["engines"]
    ours = engines.get(OURS, {})
    rates = (report.get("ceiling") or {}).get("ops_per_second") or {}
    for result in ours.get("results", []):
        if not _ok(result):
            continue
        implied = implied_seconds(_counts(result), rates)
        if implied is not None:
            result["storage_implied_seconds"] = round(implied, 3)
            result["ceiling_fraction"] = round(implied / result["wall_seconds"], 3)
    ratios: dict[str, dict[str, Any]] = {}
    mine = _by_workload(ours)
    for peer, data in engines.items():
        if peer == OURS:
            continue
        theirs = _by_workload(data)
        for workload, result in mine.items():
            other = theirs.get(workload)
            if not (_ok(result) and _ok(other)):
                continue
            assert other is not None
            entry = ratios.setdefault(workload, {})
            entry[peer] = {
                "throughput_ours_over_peer": round(result["items_per_second"] / other["items_per_second"], 3),
                "cpu_ours_over_peer": (
                    round(result["cpu_seconds"] / other["cpu_seconds"], 2) if other["cpu_seconds"] else None
                ),
                "p50_ours_over_peer": (
                    round(result["latency_ms"]["p50"] / other["latency_ms"]["p50"], 2)
                    if result.get("latency_ms") and other.get("latency_ms") and other["latency_ms"]["p50"]
                    else None
                ),
            }
    report["ratios"] = ratios
    report["targets"] = _targets(mine, report.get("target_thresholds", {})) + _cpu_targets(
        ratios, report.get("target_thresholds", {})
    )


def _cpu_targets(ratios: dict[str, dict[str, Any]], thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """Engine CPU (our worker + client process, the store excluded) over DBOS's, same work."""
    limit = thresholds.get("cpu_over_dbos")
    out: list[dict[str, Any]] = []
    for workload in ("hello-sequence", "fan-out"):
        ratio = ((ratios.get(workload) or {}).get("dbos-postgres") or {}).get("cpu_ours_over_peer")
        if ratio is None:
            continue
        out.append(
            {
                "target": f"{workload}: engine CPU over DBOS/PostgreSQL's (store CPU excluded)",
                "limit": limit,
                "measured": ratio,
                "met": limit is not None and ratio <= limit,
            }
        )
    return out


def _targets(mine: dict[str, dict[str, Any]], thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """Measured values next to the issue's targets; thresholds come from the command line."""
    out: list[dict[str, Any]] = []
    hello = mine.get("hello-sequence")
    if _ok(hello):
        assert hello is not None
        value = (hello.get("transactions") or {}).get("per_orchestration")
        out.append(
            {
                "target": "hello-sequence storage transactions per orchestration",
                "limit": thresholds.get("hello_transactions"),
                "measured": value,
                "met": value is not None and value <= thresholds.get("hello_transactions", float("inf")),
            }
        )
    fractions = {w: r.get("ceiling_fraction") for w, r in mine.items() if _ok(r) and w not in ("latency", "timers")}
    for workload, fraction in fractions.items():
        limit = thresholds.get("ceiling_fraction")
        out.append(
            {
                "target": f"{workload}: throughput as a fraction of the storage ceiling",
                "limit": limit,
                "measured": fraction,
                "met": fraction is not None and limit is not None and fraction >= limit,
            }
        )
    latency = mine.get("latency")
    if _ok(latency):
        assert latency is not None
        p50 = (latency.get("latency_ms") or {}).get("p50")
        limit = thresholds.get("latency_p50_ms")
        out.append(
            {
                "target": "warm start-to-complete latency p50 (ms)",
                "limit": limit,
                "measured": p50,
                "met": p50 is not None and limit is not None and p50 <= limit,
            }
        )
    long = mine.get("long-history")
    if long is not None and _ok(long) and "growth_last_over_first" in (long.get("replay") or {}):
        growth = long["replay"]["growth_last_over_first"]
        limit = thresholds.get("replay_growth")
        out.append(
            {
                "target": "replay CPU per episode, last fifth of history over first fifth",
                "limit": limit,
                "measured": growth,
                "met": growth is not None and limit is not None and growth <= limit,
            }
        )
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=200)
    engines = report["engines"]
    table = Table(title="Workloads (one row per engine; tx = storage transactions, or SQL round trips for DBOS)")
    for column in (
        "workload",
        "engine",
        "wall s",
        "orch/s",
        "items/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "tx/orch",
        "tx/item",
        "CPU s/orch",
        "CPU ms/item",
        "RSS MiB",
        "store CPU s",
        "% ceiling",
    ):
        table.add_column(column, justify="left" if column in ("workload", "engine") else "right")
    workloads = report["workloads"]
    notes: list[str] = []
    for name, data in engines.items():
        if data.get("status") != "ok":
            notes.append(f"{name}: {data.get('status')}: {data.get('reason', '')}")
    for workload in workloads:
        for name, data in engines.items():
            if data.get("status") != "ok":
                table.add_row(workload, name, data.get("status", "n/a"))
                continue
            result = _by_workload(data).get(workload)
            if result is None:
                continue
            if result.get("status") != "ok":
                table.add_row(workload, name, str(result.get("status")))
                notes.append(f"{name} {workload}: {result.get('status')}: {result.get('reason', '')}")
                continue
            tx = result.get("transactions") or {}
            lat = result.get("latency_ms") or {}
            fraction = result.get("ceiling_fraction")
            table.add_row(
                workload,
                name,
                _fmt(result["wall_seconds"], 2),
                _fmt(result["orchestrations_per_second"], 2),
                _fmt(result["items_per_second"], 1),
                _fmt(lat.get("p50")),
                _fmt(lat.get("p95")),
                _fmt(lat.get("p99")),
                _fmt(tx.get("per_orchestration")),
                _fmt(tx.get("per_item") or tx.get("per_activity"), 2),
                _fmt(result.get("cpu_seconds_per_orchestration"), 4),
                _fmt(result.get("cpu_ms_per_item"), 2),
                _fmt(result.get("peak_rss_mib")),
                _fmt(result.get("server_cpu_seconds"), 2),
                "-" if fraction is None else f"{fraction:.0%}",
            )
        table.add_section()
    console.print(table)
    for note in notes:
        console.print(f"  {note}")
    ceiling = report.get("ceiling")
    if ceiling:
        rates = Table(title="Storage ceiling: lean-client ops/s (client CPU ms per op; client cores used)")
        rates.add_column("concurrency")
        first_level: dict[str, Any] = next(iter((ceiling.get("levels") or {}).values()), {})
        keys = list(first_level.get("ops_per_second", ceiling["ops_per_second"]))
        for key in keys:
            rates.add_column(key, justify="right")
        for level, data in (ceiling.get("levels") or {}).items():
            cpu = data.get("client_cpu_ms_per_op", {})
            cores = data.get("client_cores", {})
            ops = data["ops_per_second"]
            cells = (f"{_fmt(ops.get(k))} ({_fmt(cpu.get(k), 2)}; {_fmt(cores.get(k), 2)})" for k in keys)
            rates.add_row(level, *cells)
        rates.add_row("ceiling (best)", *(_fmt(ceiling["ops_per_second"].get(k)) for k in keys))
        console.print(rates)
    if report.get("ratios"):
        ratio_table = Table(title=f"{OURS} / peer (throughput >1 = we are faster; CPU and p50 <1 = we use less)")
        for column in ("workload", "peer", "throughput", "CPU", "p50"):
            ratio_table.add_column(column, justify="left" if column in ("workload", "peer") else "right")
        for workload, peers in report["ratios"].items():
            for peer, values in peers.items():
                ratio_table.add_row(
                    workload,
                    peer,
                    _fmt(values["throughput_ours_over_peer"], 3),
                    _fmt(values["cpu_ours_over_peer"], 2),
                    _fmt(values["p50_ours_over_peer"], 2),
                )
        console.print(ratio_table)
    replay_rows = [
        (name, r["replay"])
        for name, data in engines.items()
        for r in data.get("results", [])
        if r.get("workload") == "long-history" and isinstance(r.get("replay"), dict)
    ]
    if replay_rows:
        replay = Table(title="long-history: CPU ms per episode by history length (flat = same across the row)")
        replay.add_column("engine")
        for i in range(5):
            replay.add_column(f"fifth {i + 1}", justify="right")
        replay.add_column("last/first", justify="right")
        replay.add_column("whole work item ms by fifth (load, replay, checkpoint)", justify="right")
        for name, data in replay_rows:
            buckets = data.get("buckets") or []
            cells = [f"{b['cpu_ms_mean']:.2f} @{b['history_events']}" for b in buckets]
            cells += ["-"] * (5 - len(cells))
            walls = data.get("work_item_wall_ms_by_fifth")
            replay.add_row(
                name,
                *cells,
                _fmt(data.get("growth_last_over_first"), 2) if buckets else data.get("note", "-"),
                " / ".join(f"{w:.0f}" for w in walls) if walls else "-",
            )
        console.print(replay)
    if report.get("targets"):
        targets = Table(title="Targets (thresholds from the command line, not hard-coded in the suite)")
        for column in ("target", "limit", "measured", "met"):
            targets.add_column(column)
        for row in report["targets"]:
            targets.add_row(row["target"], _fmt(row["limit"]), _fmt(row["measured"], 3), "yes" if row["met"] else "NO")
        console.print(targets)
