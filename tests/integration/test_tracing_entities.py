"""``entity:{name}:{operation}`` spans on Azurite: the caller's side (CLIENT for a call, PRODUCER for a
signal, from an orchestration or the client) and one SERVER span per executed operation, its child."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import entities, task
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


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def get(self) -> int:
        value: int = self.get_state(int, 0)
        return value


def caller(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    counter = entities.EntityInstanceId("counter", key)
    yield ctx.call_entity(counter, "add", 5)
    ctx.signal_entity(counter, "add", 10)
    total = yield ctx.call_entity(counter, "get")
    return total


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
async def client(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> AsyncIterator[TaskHubClient]:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(storage_account, settings)
    worker.add_orchestrator(caller)
    worker.add_entity(Counter)
    async with worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        async with await TaskHubClient.open(storage_account, task_hub_name) as hub_client:
            yield hub_client


def _named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


async def test_entity_operation_spans(spans: InMemorySpanExporter, client: TaskHubClient) -> None:
    instance_id = await client.schedule_new_orchestration("caller", input="k1")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed and state.output == "15"
    await client.signal_entity("counter", "add", 1, key="k1")

    def servers() -> list[ReadableSpan]:
        return [s for s in _named(spans, "entity:counter:add") + _named(spans, "entity:counter:get")
                if s.kind == SpanKind.SERVER]

    await eventually(lambda: len(servers()) == 4, timeout=30, message="four executed operations")
    (orchestration,) = _named(spans, "orchestration:caller")
    callers = [s for s in spans.get_finished_spans() if s.name.startswith("entity:") and s.kind != SpanKind.SERVER]
    by_id = {s.context.span_id: s for s in callers}
    from_orchestration = [s for s in callers if s.parent is not None]
    assert sorted((s.name, s.kind.name) for s in from_orchestration) == [
        ("entity:counter:add", "CLIENT"), ("entity:counter:add", "PRODUCER"), ("entity:counter:get", "CLIENT")
    ]
    for span in from_orchestration:
        assert span.parent is not None and span.parent.span_id == orchestration.context.span_id
        assert span.context.trace_id == orchestration.context.trace_id
    (from_client,) = [s for s in callers if s.parent is None]
    assert from_client.kind == SpanKind.PRODUCER and from_client.name == "entity:counter:add"
    for server in servers():
        assert server.parent is not None, server.name
        parent = by_id[server.parent.span_id]  # every executed operation hangs off its caller's span
        assert parent.name == server.name and server.context.trace_id == parent.context.trace_id
        assert server.attributes is not None and server.attributes["durabletask.task.instance_id"] == "@counter@k1"
        expected = "signal_entity" if parent.kind == SpanKind.PRODUCER else "call_entity"
        assert server.attributes["durabletask.task.operation"] == expected
