"""Workload sizes: two presets (``smoke`` for the test suite, ``default`` for a real run) and flags.

Defaults are chosen to finish in minutes on a 2-core machine with Azurite on the same host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["PRESETS", "WORKLOADS", "Sizes"]

WORKLOADS = (
    "hello-sequence",
    "fan-out",
    "long-history",
    "external-events",
    "timers",
    "entity-ops",
    "latency",
)


@dataclass(frozen=True)
class Sizes:
    """Every knob a workload reads; ``--set name=value`` overrides one of them."""

    hello_instances: int = 100  # concurrent hello-sequences (5 chained activities each)
    fanout_activities: int = 1000  # activities of the single fan-out/fan-in orchestration
    long_activities: int = 500  # activities in sequence in one orchestration
    events: int = 100  # external events raised to one waiting instance
    timers: int = 100  # concurrent orchestrations, each waiting on one timer
    timer_seconds: float = 2.0  # how long each timer waits
    entity_ops: int = 200  # signals to one counter entity
    latency_runs: int = 100  # sequential 1-activity orchestrations on a warm, idle worker
    latency_idle_seconds: float = 0.5  # pause between latency runs (the worker goes idle)
    ceiling_seconds: float = 2.0  # how long each raw storage operation is measured
    concurrency: int = 10  # in-flight raw operations for the ceiling (= max concurrent activities)
    timeout_seconds: float = 900.0  # per workload

    def with_overrides(self, pairs: list[str]) -> Sizes:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in known:
                raise SystemExit(f"--set expects NAME=VALUE with NAME one of {', '.join(known)}; got {pair!r}")
            kind = type(getattr(self, name))
            changes[name] = kind(raw)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, Sizes] = {
    "default": Sizes(),
    "smoke": Sizes(
        hello_instances=3,
        fanout_activities=10,
        long_activities=8,
        events=5,
        timers=3,
        timer_seconds=0.3,
        entity_ops=5,
        latency_runs=5,
        latency_idle_seconds=0.0,
        ceiling_seconds=0.15,
        concurrency=4,
        timeout_seconds=60.0,
    ),
}
