"""The chaos workload: what the worker hosts run (``--app tests.chaos.app:register``).

Every activity execution appends one line to the ledger file named by ``CHAOS_LEDGER`` — an
append-only record the engine knows nothing about — so the test can count executions. The
orchestration exercises activities, a retried activity, a durable timer, a sub-orchestration,
external events (all named ``ev``, so a duplicate would be consumed as the next value and be
seen), an entity signal, an entity call, and a call under an entity lock (a critical section).
The counter entity keeps the ids of the operations it applied, so each operation's exactly-once
application is checkable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from durabletask import entities, task

LEDGER_ENV = "CHAOS_LEDGER"


def _append(record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True) + "\n"
    # One write of a short line with O_APPEND: atomic with respect to the other hosts.
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _executions(key: str) -> int:
    try:
        with open(os.environ[LEDGER_ENV], encoding="utf-8") as ledger:
            return sum(1 for line in ledger if json.loads(line).get("key") == key)
    except FileNotFoundError:
        return 0


def record(ctx: task.ActivityContext, spec: dict[str, Any]) -> str:
    """An activity; ``slow_seconds`` makes it outlast the work-item visibility timeout."""
    if spec.get("slow_seconds"):
        time.sleep(float(spec["slow_seconds"]))
    _append({"key": spec["key"], "instance": ctx.orchestration_id, "kind": "activity"})
    return str(spec["key"])


def flaky(ctx: task.ActivityContext, key: str) -> str:
    """Fails its first execution (by the ledger), so the retry policy is exercised."""
    earlier = _executions(key)
    _append({"key": key, "instance": ctx.orchestration_id, "kind": "flaky"})
    if earlier == 0:
        raise RuntimeError(f"first attempt of {key} fails on purpose")
    return key


def child(ctx: task.OrchestrationContext, spec: dict[str, Any]) -> Generator[task.Task[Any], Any, int]:
    yield ctx.call_activity(record, input={"key": f"{spec['id']}:child"})
    return int(spec["n"]) * 2


def chaos_flow(ctx: task.OrchestrationContext, spec: dict[str, Any]) -> Generator[task.Task[Any], Any, dict[str, Any]]:
    run_id = spec["id"]
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5)
    first = yield ctx.call_activity(record, input={"key": f"{run_id}:a1", "slow_seconds": spec.get("slow", 0)})
    retried = yield ctx.call_activity(flaky, input=f"{run_id}:flaky", retry_policy=policy)
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    doubled = yield ctx.call_sub_orchestrator(child, input={"id": run_id, "n": spec["n"]},
                                               instance_id=f"{ctx.instance_id}-child")
    counter = entities.EntityInstanceId("counter", spec["entity"])
    ctx.signal_entity(counter, "add", {"op": f"{run_id}:signal", "n": 1})
    if spec.get("calls"):
        yield ctx.call_entity(counter, "add", {"op": f"{run_id}:call", "n": 1})
        with (yield ctx.lock_entities([counter])):
            yield ctx.call_entity(counter, "add", {"op": f"{run_id}:locked", "n": 1})
    else:
        ctx.signal_entity(counter, "add", {"op": f"{run_id}:locked", "n": 1})
    events = []
    for _ in range(int(spec["events"])):
        events.append((yield ctx.wait_for_external_event("ev")))
    return {"first": first, "retried": retried, "doubled": doubled, "events": events}


class Counter(entities.DurableEntity):
    """Applies ``add`` operations and remembers which operation ids it applied."""

    def add(self, op: dict[str, Any]) -> int:
        state = self.get_state(dict, {"ops": [], "total": 0})
        state["ops"].append(op["op"])
        state["total"] += int(op["n"])
        self.set_state(state)
        return int(state["total"])

    def get(self) -> dict[str, Any]:
        state: dict[str, Any] = self.get_state(dict, {"ops": [], "total": 0})
        return state


def register(worker: Any) -> None:
    worker.add_orchestrator(chaos_flow)
    worker.add_orchestrator(child)
    worker.add_activity(record)
    worker.add_activity(flaky)
    worker.add_entity(Counter, "counter")
