"""OpenTelemetry traces of real orchestrations on Azurite, collected with the SDK's in-memory exporter.

One trace per started orchestration, shaped as DTFx traces it: ``create_orchestration`` (client,
PRODUCER) → ``orchestration`` (SERVER) → for each scheduled activity attempt an ``activity`` CLIENT span
(scheduling to result) → its ``activity`` SERVER span (the run); for the sub-orchestration an
``orchestration:child`` CLIENT span → the child's SERVER span; timer and raised-event spans — each
exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from durable_azstorage import telemetry
from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually

_attempts: Counter[str] = Counter()


def flaky(ctx: task.ActivityContext, key: str) -> str:
    """Fails on its first attempt per key, so the retry policy schedules a second one."""
    _attempts[key] += 1
    if _attempts[key] == 1:
        raise RuntimeError("first attempt fails")
    return key


def square(ctx: task.ActivityContext, value: int) -> int:
    return value * value


def child(ctx: task.OrchestrationContext, value: int) -> Generator[task.Task[Any], Any, int]:
    result: int = yield ctx.call_activity(square, input=value)
    return result


def traced(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, list[Any]]:
    retry = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3)
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in range(3)])
    sub = yield ctx.call_sub_orchestrator(child, input=5)
    flaky_result = yield ctx.call_activity(flaky, input=key, retry_policy=retry)
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=300))
    approval = yield ctx.wait_for_external_event("approve")
    return [sum(squares), sub, flaky_result, approval]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        telemetry.disable()


@pytest.fixture
async def client(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[TaskHubClient]:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(storage_account, settings)
    for fn in (traced, child):
        worker.add_orchestrator(fn)
    for activity in (square, flaky):
        worker.add_activity(activity)
    async with worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        async with await TaskHubClient.open(storage_account, task_hub_name) as hub_client:
            yield hub_client


def _kind(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


async def test_one_connected_trace_with_one_span_per_attempt(
    spans: InMemorySpanExporter, client: TaskHubClient
) -> None:
    instance_id = await client.schedule_new_orchestration("traced", input="k1")
    await client.raise_event(instance_id, "approve", "yes")  # kept until the orchestration waits for it
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed

    def finished() -> bool:
        return any(s.name == "orchestration:traced" for s in spans.get_finished_spans())

    await eventually(finished, timeout=10, message="orchestration span exported")
    found = spans.get_finished_spans()
    names = _by_name(found)

    (create,) = names["create_orchestration:traced"]
    workflow = [s for s in found if not s.name.startswith("orchestration_event:")]
    assert {s.context.trace_id for s in workflow} == {create.context.trace_id}, [
        (s.name, s.context.trace_id) for s in workflow
    ]
    (orchestration,) = names["orchestration:traced"]
    (child_span,) = _kind(names["orchestration:child"], SpanKind.SERVER)
    (child_client,) = _kind(names["orchestration:child"], SpanKind.CLIENT)
    assert create.kind == SpanKind.PRODUCER and create.parent is None
    assert orchestration.kind == SpanKind.SERVER
    assert orchestration.parent is not None and orchestration.parent.span_id == create.context.span_id
    assert child_client.parent is not None and child_client.parent.span_id == orchestration.context.span_id
    assert child_span.parent is not None and child_span.parent.span_id == child_client.context.span_id
    assert child_client.start_time is not None and child_span.start_time is not None
    assert child_client.start_time <= child_span.start_time  # scheduled before it started
    assert orchestration.attributes is not None
    assert orchestration.attributes["durabletask.task.instance_id"] == instance_id
    assert orchestration.attributes["durabletask.task.status"] == "Completed"

    squares = _kind(names["activity:square"], SpanKind.SERVER)
    square_clients = _kind(names["activity:square"], SpanKind.CLIENT)
    assert len(squares) == 4 and len(square_clients) == 4  # three from the fan-out, one from the child
    client_parents = Counter(s.parent.span_id for s in square_clients if s.parent is not None)
    assert client_parents == {orchestration.context.span_id: 3, child_span.context.span_id: 1}
    by_client = {s.context.span_id: s for s in square_clients}
    assert sorted(s.parent.span_id for s in squares if s.parent) == sorted(by_client), "each run under its CLIENT"
    flaky_spans = _kind(names["activity:flaky"], SpanKind.SERVER)
    assert len(flaky_spans) == 2, "exactly one span per execution attempt (first fails, retry succeeds)"
    assert sorted(str(s.status.status_code) for s in flaky_spans) == ["StatusCode.ERROR", "StatusCode.UNSET"]
    flaky_clients = _kind(names["activity:flaky"], SpanKind.CLIENT)
    assert len(flaky_clients) == 2, "the retry is a new attempt with a CLIENT span of its own"
    assert sorted(str(s.status.status_code) for s in flaky_clients) == ["StatusCode.ERROR", "StatusCode.UNSET"]
    assert {s.parent.span_id for s in flaky_spans if s.parent} == {s.context.span_id for s in flaky_clients}
    assert len(names["orchestration:traced:timer"]) == 2  # the retry's back-off timer and the explicit one
    (event,) = names["orchestration_event:approve"]
    assert event.kind == SpanKind.PRODUCER  # the raise is the client's own operation: its own trace


async def test_tracing_off_writes_no_trace_context(storage_account: StorageAccount, client: TaskHubClient) -> None:
    assert not telemetry.is_enabled()
    instance_id = await client.schedule_new_orchestration("child", input=3)
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed
    history = await client.get_orchestration_history(instance_id)
    started = next(e for e in history if type(e).__name__ == "ExecutionStartedEvent")
    assert getattr(started, "parent_trace_context", None) is None
