"""Through the gRPC sidecar: the durabletask SDK worker's entity operation spans join the caller's trace.

The host passes each request's ``parentTraceContext`` (the caller's CLIENT/PRODUCER span) as
``OperationRequest.traceContext``; the SDK worker emits one SERVER ``entity:{name}:{operation}``
span per operation with it, and the host emits none of its own. The caller-side spans of an
orchestration run by the SDK worker come from the host (the SDK emits none), under the SDK's
orchestration span.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import entities, task
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from tests.helpers import eventually
from tests.sidecar_support import HostedWorker
from tests.tracing_support import global_span_exporter


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def get(self) -> int:
        value: int = self.get_state(int, 0)
        return value


def counting(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    counter = entities.EntityInstanceId("counter", key)
    yield ctx.call_entity(counter, "add", 5)
    ctx.signal_entity(counter, "add", 10)
    total = yield ctx.call_entity(counter, "get")
    return total


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with global_span_exporter() as exporter:
        yield exporter


def _entity_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith("entity:counter:")]


async def test_sdk_entity_spans_join_the_caller_trace(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> None:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    host = HostedWorker(storage_account, settings, "sidecar")
    host.add_orchestrator(counting)
    host.add_entity(Counter)
    async with host as worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        async with await TaskHubClient.open(storage_account, task_hub_name) as client:
            instance_id = await client.schedule_new_orchestration("counting", input="k1")
            state = await client.wait_for_completion(instance_id, timeout=60)
            assert state.runtime_status == OrchestrationStatus.Completed and state.output == "15"
            await client.signal_entity("counter", "add", 1, key="k1")

            def servers() -> list[ReadableSpan]:
                return [s for s in _entity_spans(spans) if s.kind == SpanKind.SERVER]

            await eventually(lambda: len(servers()) >= 4, timeout=30, message="four executed operations")
    assert len(servers()) == 4, [(s.name, s.instrumentation_scope.name) for s in servers()]  # no host duplicate
    (orchestration,) = [s for s in spans.get_finished_spans() if s.name == "orchestration:counting"]
    callers = [s for s in _entity_spans(spans) if s.kind != SpanKind.SERVER]
    by_id = {s.context.span_id: s for s in callers}
    from_orchestration = [s for s in callers if s.parent is not None]
    assert sorted((s.name, s.kind.name) for s in from_orchestration) == [
        ("entity:counter:add", "CLIENT"), ("entity:counter:add", "PRODUCER"), ("entity:counter:get", "CLIENT")
    ]
    for span in from_orchestration:  # the host's caller spans hang off the SDK's orchestration span
        assert span.parent is not None and span.parent.span_id == orchestration.context.span_id
        assert span.context.trace_id == orchestration.context.trace_id
    (from_client,) = [s for s in callers if s.parent is None]
    assert from_client.kind == SpanKind.PRODUCER and from_client.name == "entity:counter:add"
    for server in servers():
        assert server.instrumentation_scope.name == "durabletask", server.instrumentation_scope
        assert server.parent is not None, server.name
        parent = by_id[server.parent.span_id]  # every executed operation hangs off its caller's span
        assert parent.name == server.name and server.context.trace_id == parent.context.trace_id
