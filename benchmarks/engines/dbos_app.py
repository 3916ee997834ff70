"""The benchmark's user code for DBOS: the same work as ``benchmarks/app.py`` in DBOS idioms.

An activity is a ``@DBOS.step``; a fan-out enqueues one child workflow per item on a queue
(DBOS's documented way to run steps in parallel); an external event is ``DBOS.send``/``recv``;
a durable timer is ``DBOS.sleep``. DBOS has no durable entities.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

CITIES = ("Tokyo", "Seattle", "London", "Cairo", "Lima")
FANOUT_QUEUE = "bench_fanout"  # registered after launch (DBOS.register_queue, library defaults)


@DBOS.step()
def hello(name: str) -> str:
    return f"Hello {name}!"


@DBOS.step()
def square(value: int) -> int:
    return value * value


@DBOS.workflow()
def hello_sequence(_: Any) -> list[str]:
    return [hello(city) for city in CITIES]


@DBOS.workflow()
def square_child(value: int) -> int:
    return square(value)


@DBOS.workflow()
def fanout(count: int) -> int:
    queue = DBOS.retrieve_queue(FANOUT_QUEUE)
    assert queue is not None
    handles = [queue.enqueue(square_child, i) for i in range(count)]
    return sum(h.get_result() for h in handles)


@DBOS.workflow()
def long_sequence(count: int) -> int:
    total = 0
    for i in range(count):
        total += square(i)
    return total


@DBOS.workflow()
def wait_events(count: int) -> int:
    total = 0
    for _ in range(count):
        value = DBOS.recv("item", timeout_seconds=600)
        if value is None:
            raise TimeoutError("no event within 600 s")
        total += int(value)
    return total


@DBOS.workflow()
def timer(seconds: float) -> float:
    DBOS.sleep(seconds)
    return seconds


@DBOS.workflow()
def single_activity(name: str) -> str:
    return hello(name)


WORKFLOWS = {
    "hello_sequence": hello_sequence,
    "fanout": fanout,
    "long_sequence": long_sequence,
    "wait_events": wait_events,
    "timer": timer,
    "single_activity": single_activity,
}
