"""The benchmark's user code, written once against the durabletask SDK.

The same functions run on durable_azstorage and on the durabletask in-memory backend, so the
two columns compare engines, not code. The DBOS peer has equivalents in ``engines/dbos_app.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from durabletask import entities, task

CITIES = ("Tokyo", "Seattle", "London", "Cairo", "Lima")


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def square(ctx: task.ActivityContext, value: int) -> int:
    return value * value


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for city in CITIES:
        out.append((yield ctx.call_activity(hello, input=city)))
    return out


def fanout(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    values = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return sum(values)


def long_sequence(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    total = 0
    for i in range(count):
        total += yield ctx.call_activity(square, input=i)
    return total


def wait_events(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    total = 0
    for _ in range(count):
        total += yield ctx.wait_for_external_event("item")
    return total


def timer(ctx: task.OrchestrationContext, seconds: float) -> Generator[task.Task[Any], Any, float]:
    yield ctx.create_timer(timedelta(seconds=seconds))
    return seconds


def single_activity(ctx: task.OrchestrationContext, name: str) -> Generator[task.Task[Any], Any, str]:
    result: str = yield ctx.call_activity(hello, input=name)
    return result


class Counter(entities.DurableEntity):
    """Single-entity throughput: every signal adds to one integer."""

    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def get(self) -> int:
        value: int = self.get_state(int, 0)
        return value


ORCHESTRATORS: tuple[Callable[..., Any], ...] = (
    hello_sequence,
    fanout,
    long_sequence,
    wait_events,
    timer,
    single_activity,
)
ACTIVITIES: tuple[Callable[..., Any], ...] = (hello, square)
