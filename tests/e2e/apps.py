"""A durabletask app for the multi-process tests (``--app tests.e2e.apps:register``)."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from typing import Any

from durabletask import task


def hello(ctx: task.ActivityContext, name: str) -> str:
    time.sleep(0.02)  # a little work, so orchestrations are in flight when a worker dies
    return f"Hello {name} from {os.environ.get('E2E_WORKER', '?')}"


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    results = []
    for city in ("Tokyo", "Seattle", "London", "Cairo", "Lima"):
        results.append((yield ctx.call_activity(hello, input=city)))
    return results


def register(worker: Any) -> None:
    worker.add_orchestrator(hello_sequence)
    worker.add_activity(hello)


def _ledger(entry: str) -> None:
    """Append one line per activity execution to E2E_LEDGER: the test's own count, not the engine's."""
    path = os.environ.get("E2E_LEDGER")
    if path:
        with open(path, "a", encoding="utf-8") as ledger:
            ledger.write(entry + "\n")


def traced_square(ctx: task.ActivityContext, value: int) -> int:
    time.sleep(0.05)
    _ledger(f"{ctx.orchestration_id} {ctx.task_id}")
    return value * value


def traced_child(ctx: task.OrchestrationContext, value: int) -> Generator[task.Task[Any], Any, int]:
    result: int = yield ctx.call_activity(traced_square, input=value)
    return result


def traced_fan_out(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    squares = yield task.when_all([ctx.call_activity(traced_square, input=i) for i in range(count)])
    child: int = yield ctx.call_sub_orchestrator(traced_child, input=count)
    return int(sum(squares)) + child


def register_traced(worker: Any) -> None:
    register(worker)
    worker.add_orchestrator(traced_fan_out)
    worker.add_orchestrator(traced_child)
    worker.add_activity(traced_square)
