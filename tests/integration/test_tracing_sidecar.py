"""Through the gRPC sidecar: the durabletask SDK worker's own spans join the client's trace.

The sidecar passes ``ExecutionStarted.parentTraceContext`` (the client's create span), the
orchestration span's id and start chosen by the host (``OrchestratorRequest.orchestrationTraceContext``)
and each activity's ``ActivityRequest.parentTraceContext`` (the SDK's CLIENT span for it, kept from its
``scheduleTask`` action in ``TaskScheduled``); the SDK worker, in this process, emits the orchestration,
activity CLIENT and activity SERVER spans into the global tracer provider.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from tests.helpers import eventually
from tests.sidecar_support import HostedWorker
from tests.tracing_support import global_span_exporter


def shout(ctx: task.ActivityContext, word: str) -> str:
    return word.upper()


def shouting(ctx: task.OrchestrationContext, _: None) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for word in ("a", "b"):
        out.append((yield ctx.call_activity(shout, input=word)))
    return out


def shouting_parent(ctx: task.OrchestrationContext, _: None) -> Generator[task.Task[Any], Any, list[str]]:
    return (yield ctx.call_sub_orchestrator(shouting))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with global_span_exporter() as exporter:
        yield exporter


async def _run_on_the_sidecar(account: StorageAccount, task_hub_name: str, orchestration: str) -> None:
    """One orchestration to completion on the SDK worker behind an in-process sidecar."""
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    host = HostedWorker(account, settings, "sidecar")
    host.add_orchestrator(shouting_parent)
    host.add_orchestrator(shouting)
    host.add_activity(shout)
    async with host as worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        async with await TaskHubClient.open(account, task_hub_name) as client:
            instance_id = await client.schedule_new_orchestration(orchestration)
            state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed


async def test_sdk_worker_spans_join_the_client_trace(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> None:
    await _run_on_the_sidecar(storage_account, task_hub_name, "shouting")

    def named(name: str) -> list[Any]:
        return [s for s in spans.get_finished_spans() if s.name == name]

    await eventually(lambda: len(named("orchestration:shouting")) >= 1, timeout=10, message="orchestration span")
    (create,) = named("create_orchestration:shouting")
    orchestrations = named("orchestration:shouting")
    assert len(orchestrations) == 1, [(s.name, s.kind) for s in orchestrations]  # the SDK's; we emit none
    (orchestration,) = orchestrations
    assert orchestration.kind == SpanKind.SERVER and orchestration.instrumentation_scope.name == "durabletask"
    assert orchestration.context.trace_id == create.context.trace_id
    assert orchestration.parent is not None and orchestration.parent.span_id == create.context.span_id
    activities = [s for s in named("activity:shout") if s.kind == SpanKind.SERVER]
    callers = [s for s in named("activity:shout") if s.kind == SpanKind.CLIENT]
    assert len(activities) == 2 and len(callers) == 2, [(s.name, s.kind) for s in named("activity:shout")]
    # The SDK's CLIENT span (scheduling, emitted when the result arrives) sits under the orchestration,
    # and the activity's SERVER span under it: its context rode in TaskScheduled, history and message.
    client_ids = {s.context.span_id for s in callers}
    for span in callers:
        assert span.context.trace_id == create.context.trace_id
        assert span.parent is not None and span.parent.span_id == orchestration.context.span_id
    for span in activities:
        assert span.context.trace_id == create.context.trace_id
        assert span.parent is not None and span.parent.span_id in client_ids
    assert len({s.parent.span_id for s in activities if s.parent is not None}) == 2


async def test_an_sdk_client_span_parents_the_host_create_span(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> None:
    """``CreateInstanceRequest.parentTraceContext`` (the SDK client's own create span) parents ours."""
    from durabletask.client import AsyncTaskHubGrpcClient

    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    host = HostedWorker(storage_account, settings, "sidecar")
    host.add_orchestrator(shouting)
    host.add_activity(shout)
    async with host as worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        assert host._sidecar is not None
        sdk_client = AsyncTaskHubGrpcClient(host_address=f"localhost:{host._sidecar.port}")
        try:
            with trace.get_tracer("test").start_as_current_span("caller") as caller:
                instance_id = await sdk_client.schedule_new_orchestration("shouting")
            state = await sdk_client.wait_for_orchestration_completion(instance_id, timeout=60)
        finally:
            await sdk_client.close()
    assert state is not None and state.runtime_status.name == "COMPLETED"

    def named(name: str) -> list[Any]:
        return [s for s in spans.get_finished_spans() if s.name == name]

    await eventually(lambda: len(named("orchestration:shouting")) >= 1, timeout=10, message="orchestration span")
    creates = {s.instrumentation_scope.name: s for s in named("create_orchestration:shouting")}
    sdk, ours = creates["durabletask"], creates["durable_azstorage"]
    assert sdk.parent is not None and sdk.parent.span_id == caller.get_span_context().span_id
    assert ours.parent is not None and ours.parent.span_id == sdk.context.span_id
    (orchestration,) = named("orchestration:shouting")
    assert orchestration.parent is not None and orchestration.parent.span_id == ours.context.span_id
    assert {s.context.trace_id for s in (sdk, ours, orchestration)} == {caller.get_span_context().trace_id}


async def test_sdk_sub_orchestration_client_span_parents_the_child(
    spans: InMemorySpanExporter, storage_account: StorageAccount, task_hub_name: str
) -> None:
    """The SDK's CLIENT span for a sub-orchestration: its id kept as ``ClientSpanId``, the child under it."""
    await _run_on_the_sidecar(storage_account, task_hub_name, "shouting_parent")

    def named(name: str) -> list[Any]:
        return [s for s in spans.get_finished_spans() if s.name == name]

    await eventually(lambda: len(named("orchestration:shouting_parent")) >= 1, timeout=10, message="parent span")
    (parent,) = named("orchestration:shouting_parent")
    (call,) = [s for s in named("orchestration:shouting") if s.kind == SpanKind.CLIENT]
    (child,) = [s for s in named("orchestration:shouting") if s.kind == SpanKind.SERVER]
    assert call.parent is not None and call.parent.span_id == parent.context.span_id
    assert child.parent is not None and child.parent.span_id == call.context.span_id
    assert {s.context.trace_id for s in (parent, call, child)} == {parent.context.trace_id}

