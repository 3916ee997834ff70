"""The workloads, written once against :class:`engines.base.Engine`, and the per-workload record.

Each workload returns what it did (orchestrations, activities or other work items, latency
samples, extras); :func:`run_workload` wraps it with wall time, CPU, peak RSS, server CPU and
the storage transactions counted while it ran.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .engines.base import Completion, Engine, ReplayProbe
from .measure import ProcessProbe, ServerCpu, percentiles
from .sizes import Sizes

__all__ = ["WORKLOAD_FUNCTIONS", "Outcome", "run_workload"]


@dataclass
class Outcome:
    orchestrations: int
    activities: int = 0
    items: int = 0  # events, timers, entity operations: the workload's own unit
    item_kind: str = "activities"
    latencies: list[float] = field(default_factory=list)  # seconds, per instance or per run
    latency_kind: str = "start to complete, as recorded by the engine"
    extra: dict[str, Any] = field(default_factory=dict)
    replay_instance: str | None = None


def _check(completions: list[Completion], expected: Callable[[Any], bool] | None = None) -> None:
    failed = [c.instance_id for c in completions if not c.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} instance(s) failed, e.g. {failed[0]}")
    if expected is not None:
        wrong = [c for c in completions if not expected(c.output)]
        if wrong:
            raise RuntimeError(f"unexpected output {wrong[0].output!r} of {wrong[0].instance_id}")


def _output(value: Any) -> Any:
    """Outputs come back as JSON text (durabletask) or as values (DBOS)."""
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def hello_sequence(engine: Engine, sizes: Sizes) -> Outcome:
    n = sizes.hello_instances
    ids = await engine.start_many("hello_sequence", [None] * n)
    done = await engine.wait_all(ids, sizes.timeout_seconds)
    _check(done, lambda out: len(_output(out)) == 5)
    return Outcome(orchestrations=n, activities=5 * n, latencies=[c.seconds for c in done if c.seconds is not None])


async def fan_out(engine: Engine, sizes: Sizes) -> Outcome:
    n = sizes.fanout_activities
    ids = await engine.start_many("fanout", [n])
    done = await engine.wait_all(ids, sizes.timeout_seconds)
    _check(done, lambda out: _output(out) == sum(i * i for i in range(n)))
    return Outcome(orchestrations=1, activities=n, latencies=[c.seconds for c in done if c.seconds is not None])


async def long_history(engine: Engine, sizes: Sizes) -> Outcome:
    n = sizes.long_activities
    ids = await engine.start_many("long_sequence", [n])
    done = await engine.wait_all(ids, sizes.timeout_seconds)
    _check(done, lambda out: _output(out) == sum(i * i for i in range(n)))
    return Outcome(
        orchestrations=1,
        activities=n,
        latencies=[c.seconds for c in done if c.seconds is not None],
        replay_instance=ids[0],
    )


async def external_events(engine: Engine, sizes: Sizes) -> Outcome:
    n = sizes.events
    ids = await engine.start_many("wait_events", [n])
    raised: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await engine.raise_event(ids[0], "item", i)
        raised.append(time.perf_counter() - t0)
    done = await engine.wait_all(ids, sizes.timeout_seconds)
    _check(done, lambda out: _output(out) == sum(range(n)))
    return Outcome(
        orchestrations=1,
        items=n,
        item_kind="events",
        latencies=raised,
        latency_kind="client raise-event call",
    )


async def timers(engine: Engine, sizes: Sizes) -> Outcome:
    n, seconds = sizes.timers, sizes.timer_seconds
    ids = await engine.start_many("timer", [seconds] * n)
    done = await engine.wait_all(ids, sizes.timeout_seconds)
    _check(done)
    late = [max(0.0, c.seconds - seconds) for c in done if c.seconds is not None]
    return Outcome(
        orchestrations=n,
        items=n,
        item_kind="timers",
        latencies=late,
        latency_kind=f"start to complete minus the {seconds:g} s timer (timer lateness + two episodes)",
    )


async def entity_ops(engine: Engine, sizes: Sizes) -> Outcome:
    n = sizes.entity_ops
    key = f"k{time.monotonic_ns()}"
    for _ in range(n):
        await engine.signal_entity("counter", key, "add", 1)
    signalled = time.perf_counter()
    deadline = time.monotonic() + sizes.timeout_seconds
    while True:
        state = await engine.entity_state("counter", key)
        if state == n:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"entity state {state!r} after the deadline, expected {n}")
        await asyncio.sleep(0.05)
    return Outcome(
        orchestrations=0,
        items=n,
        item_kind="entity operations",
        extra={"drain_seconds_after_last_signal": round(time.perf_counter() - signalled, 3)},
    )


async def latency(engine: Engine, sizes: Sizes) -> Outcome:
    warm = await engine.start_many("single_activity", ["warm"])
    await engine.wait_fast(warm[0], sizes.timeout_seconds)
    observed: list[float] = []
    recorded: list[float] = []
    for i in range(sizes.latency_runs):
        if sizes.latency_idle_seconds:
            await asyncio.sleep(sizes.latency_idle_seconds)  # deliberately idle: that is the scenario
        t0 = time.perf_counter()
        (instance_id,) = await engine.start_many("single_activity", [f"run{i}"])
        done = await engine.wait_fast(instance_id, sizes.timeout_seconds)
        observed.append(time.perf_counter() - t0)
        _check([done])
        if done.seconds is not None:
            recorded.append(done.seconds)
    return Outcome(
        orchestrations=sizes.latency_runs,
        activities=sizes.latency_runs,
        latencies=observed,
        latency_kind="client start call to completion observed by the client",
        extra={"recorded_by_engine_ms": percentiles(recorded), "idle_seconds_between_runs": sizes.latency_idle_seconds},
    )


WORKLOAD_FUNCTIONS: dict[str, Callable[[Engine, Sizes], Awaitable[Outcome]]] = {
    "hello-sequence": hello_sequence,
    "fan-out": fan_out,
    "long-history": long_history,
    "external-events": external_events,
    "timers": timers,
    "entity-ops": entity_ops,
    "latency": latency,
}


def replay_summary(samples: list[tuple[int, float, float]]) -> dict[str, Any] | None:
    """Replay work per episode against history length: is it flat?

    Episodes are split into five groups by history length; ``growth`` is the mean CPU per
    episode of the last group over the first (1.0 = flat), ``slope_us_per_event`` the least
    squares slope of CPU time against history length.
    """
    if len(samples) < 5:
        return None
    ordered = sorted(samples)
    size = len(ordered) // 5
    groups = [ordered[i * size : (i + 1) * size] for i in range(4)] + [ordered[4 * size :]]
    buckets: list[dict[str, Any]] = [
        {
            "history_events": f"{g[0][0]}-{g[-1][0]}",
            "episodes": len(g),
            "cpu_ms_mean": round(statistics.fmean(s[2] for s in g) * 1000, 3),
            "wall_ms_mean": round(statistics.fmean(s[1] for s in g) * 1000, 3),
        }
        for g in groups
    ]
    xs = [float(s[0]) for s in ordered]
    ys = [s[2] for s in ordered]
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    first, last = buckets[0]["cpu_ms_mean"], buckets[-1]["cpu_ms_mean"]
    return {
        "episodes": len(ordered),
        "max_history_events": ordered[-1][0],
        "buckets": buckets,
        "growth_last_over_first": round(last / first, 2) if first else None,
        "slope_us_per_event": round(slope * 1e6, 3),
        "total_cpu_seconds": round(sum(ys), 3),
    }


def _transactions(counts: dict[str, Counter[tuple[str, str]]] | None, outcome: Outcome) -> dict[str, Any] | None:
    if counts is None:
        return None
    engine = counts.get("engine", Counter())
    total = sum(engine.values())
    by_service: Counter[str] = Counter()
    for (service, _), count in engine.items():
        by_service[service] += count
    return {
        "total": total,
        "per_orchestration": round(total / outcome.orchestrations, 2) if outcome.orchestrations else None,
        "per_activity": round(total / outcome.activities, 2) if outcome.activities else None,
        "per_item": round(total / outcome.items, 2) if outcome.items else None,
        "by_service": dict(by_service),
        "by_operation": {f"{s}.{op}": n for (s, op), n in engine.most_common()},
        "monitor_total": sum(counts.get("monitor", Counter()).values()),
    }


async def run_workload(
    engine: Engine, name: str, sizes: Sizes, replay: ReplayProbe | None, server: ServerCpu
) -> dict[str, Any]:
    reason = engine.unsupported(name)
    if reason:
        return {"workload": name, "status": "n/a", "reason": reason}
    engine.reset_transactions()
    if replay is not None:
        replay.samples.clear()
        replay.batches.clear()
    server0 = server.seconds()
    probe = ProcessProbe().start()
    try:
        outcome = await asyncio.wait_for(WORKLOAD_FUNCTIONS[name](engine, sizes), sizes.timeout_seconds)
    except Exception as exc:  # one failing workload must not lose the others' results
        return {"workload": name, "status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    probe.stop()
    server1 = server.seconds()
    wall = probe.wall
    counts = engine.transactions()
    result: dict[str, Any] = {
        "workload": name,
        "status": "ok",
        "wall_seconds": round(wall, 3),
        "orchestrations": outcome.orchestrations,
        "activities": outcome.activities,
        "items": outcome.items,
        "item_kind": outcome.item_kind if outcome.items else "activities",
        "orchestrations_per_second": round(outcome.orchestrations / wall, 2),
        "activities_per_second": round(outcome.activities / wall, 2) if outcome.activities else None,
        "items_per_second": round((outcome.items or outcome.activities) / wall, 2),
        "latency_ms": percentiles(outcome.latencies),
        "latency_kind": outcome.latency_kind,
        "cpu_seconds": round(probe.cpu, 3),
        "cpu_seconds_per_orchestration": round(probe.cpu / outcome.orchestrations, 4)
        if outcome.orchestrations
        else None,
        "cpu_ms_per_item": round(probe.cpu * 1000 / (outcome.items or outcome.activities or 1), 3),
        "peak_rss_mib": round(probe.peak_rss_mib, 1),
        "peak_rss_is_per_workload": probe.rss_is_per_workload,
        "server_cpu_seconds": round(server1 - server0, 2) if server0 is not None and server1 is not None else None,
        "transaction_label": engine.transaction_label(),
        "transactions": _transactions(counts, outcome),
        "failed_requests": engine.failed_requests(),
        **outcome.extra,
    }
    if replay is not None and outcome.replay_instance is not None:
        result["replay"] = replay_summary(replay.for_instance(outcome.replay_instance))
        walls = replay.batches_for(outcome.replay_instance)
        if result["replay"] is not None and len(walls) >= 5:
            size = len(walls) // 5
            fifths = [walls[i * size : (i + 1) * size] for i in range(4)] + [walls[4 * size :]]
            result["replay"]["work_item_wall_ms_by_fifth"] = [round(statistics.fmean(f) * 1000, 2) for f in fifths]
    elif outcome.replay_instance is not None:
        result["replay"] = {"note": "no replay (runs once, checkpoints each step)"}
    return result
