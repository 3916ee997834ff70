"""Runtimes that run user code on connected gRPC workers instead of in this process.

They implement the worker host's runtime protocols (:mod:`durable_azstorage.runtimes.base`,
:mod:`durable_azstorage.runtimes.entities`), so partitions, leases, history loading, start
de-duplication and the DTAS checkpoint order are the ones the in-process worker uses; only
"run this episode" becomes "send an ``OrchestratorRequest`` and await the
``OrchestratorResponse``". The full history goes inline (``pastEvents``/``newEvents``), so
history streaming is never needed; entity messages travel in the Core ``EventSent``/
``EventRaised`` encoding both SDKs replay, and their actions come back through the same
converters as in-process (:func:`~durable_azstorage.runtimes.durabletask.actions_from_pb`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..model import ExecutionStartedEvent, FailureDetails, SubOrchestrationInstanceCreatedEvent
from ..runtimes.base import ActivityResult, EpisodeRequest, EpisodeResult
from ..runtimes.durabletask import _ts as pb_timestamp
from ..runtimes.durabletask import actions_from_pb, from_pb_failure, to_pb_event
from ..runtimes.entities import (
    EntityAction,
    EntityBatchRequest,
    EntityBatchResult,
    EntityOperation,
    OperationOutcome,
)
from ..runtimes.entities_durabletask import entity_action_from_pb
from ..telemetry import tracing
from ._proto import opt, pb, sv
from .broker import Broker, Kind
from .hints import EpisodeHints

__all__ = ["RemoteActivityRuntime", "RemoteEntityRuntime", "RemoteOrchestrationRuntime"]

log = logging.getLogger(__name__)


def orchestration_trace_context(started: ExecutionStartedEvent | None) -> Any:
    """Our orchestration span's id and start (kept in history), so the SDK emits its span with them.

    With telemetry on, the host derives the span id and stamps scheduled activities with it
    exactly as for in-process runs; the SDK worker then emits the one orchestration span itself.
    """
    ctx = started.parent_trace_context if started is not None else None
    if ctx is None or not ctx.span_id:
        return None
    fields: dict[str, Any] = {"spanID": sv(ctx.span_id)}
    if ctx.activity_start_time is not None:
        fields["spanStartTime"] = pb_timestamp(ctx.activity_start_time)
    return pb.OrchestrationTraceContext(**fields)


def activity_trace_context() -> Any:
    """The scheduled activity's ``ParentTraceContext`` (the orchestration span), for the SDK's activity span."""
    ctx = tracing.current_task_context.get()
    if ctx is None or not ctx.trace_parent:
        return None
    return pb.TraceContext(traceParent=ctx.trace_parent, traceState=sv(ctx.trace_state))


def operation_trace_context(op: EntityOperation) -> Any:
    """The caller's span as ``OperationRequest.traceContext``: the SDK parents its entity span with it."""
    if not op.trace_parent:
        return None
    return pb.TraceContext(traceParent=op.trace_parent)


def _events(events: Any, started: ExecutionStartedEvent | None = None) -> list[Any]:
    out = []
    for event in events:
        converted = to_pb_event(event)
        if converted is None:
            continue
        if isinstance(event, SubOrchestrationInstanceCreatedEvent) and event.client_span_id:
            client = _client_traceparent(started, event.client_span_id)
            if client is not None:
                converted.subOrchestrationInstanceCreated.parentTraceContext.CopyFrom(pb.TraceContext(traceParent=client))
        out.append(converted)
    return out


def _client_traceparent(started: ExecutionStartedEvent | None, client_span_id: str) -> str | None:
    """The SDK's CLIENT span of a sub-orchestration, from ``ClientSpanId`` and the orchestration's trace.

    DTAS keeps only the span id on ``SubOrchestrationInstanceCreated``; the trace is the
    orchestration's own, so the SDK gets back the context it chose and emits the CLIENT span
    when the child's result arrives.
    """
    ctx = started.parent_trace_context if started is not None else None
    parts = (ctx.id or ctx.trace_parent or "").split("-") if ctx is not None else []
    if len(parts) != 4:
        return None
    return f"00-{parts[1]}-{client_span_id}-{parts[3]}"


class RemoteOrchestrationRuntime:
    """One episode = one ``orchestratorRequest`` work item answered by ``CompleteOrchestratorTask``."""

    renews_leases = True  # the host renews the episode's control-queue leases while it waits
    emits_spans = True  # the SDK worker emits its own orchestration span (with the context we pass)

    def __init__(self, broker: Broker, hints: EpisodeHints | None = None) -> None:
        self._broker = broker
        self._hints = hints

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        started = next(
            (e for e in (*request.past_events, *request.new_events) if isinstance(e, ExecutionStartedEvent)), None
        )
        item = pb.WorkItem(
            orchestratorRequest=pb.OrchestratorRequest(
                instanceId=request.instance_id,
                executionId=sv(request.execution_id),
                pastEvents=_events(request.past_events, started),
                newEvents=_events(request.new_events, started),
                orchestrationTraceContext=orchestration_trace_context(started),
            )
        )
        response = await self._broker.run(
            Kind.ORCHESTRATION,
            item,
            (request.instance_id, None),
            name=(started.name or "") if started else "",
            version=started.version if started else None,
        )
        actions = actions_from_pb(request, response.actions, keep_trace_context=True)  # its CLIENT spans
        if self._hints is not None:
            self._hints.notify(request.instance_id)
        return EpisodeResult(actions=tuple(actions), custom_status=opt(response, "customStatus"))


class RemoteActivityRuntime:
    """One activity = one ``activityRequest`` answered by ``CompleteActivityTask``."""

    emits_spans = True  # the SDK worker emits the activity span

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def run_activity(
        self, name: str, input: str | None, *, instance_id: str, task_id: int
    ) -> ActivityResult:
        item = pb.WorkItem(
            activityRequest=pb.ActivityRequest(
                name=name,
                input=sv(input),
                orchestrationInstance=pb.OrchestrationInstance(instanceId=instance_id),
                taskId=task_id,
                parentTraceContext=activity_trace_context(),
            )
        )
        response = await self._broker.run(Kind.ACTIVITY, item, (instance_id, task_id), name=name)
        if response.HasField("failureDetails"):
            return ActivityResult(failure_details=from_pb_failure(response.failureDetails))
        return ActivityResult(result=opt(response, "result"))


class RemoteEntityRuntime:
    """One batch = one ``entityRequest`` (v1 ``EntityBatchRequest``) answered by ``CompleteEntityTask``."""

    renews_leases = True
    emits_spans = True  # the SDK worker emits one entity span per operation (with the caller's context)

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult:
        item = pb.WorkItem(
            entityRequest=pb.EntityBatchRequest(
                instanceId=request.instance_id,
                entityState=sv(request.entity_state),
                operations=[
                    pb.OperationRequest(
                        operation=op.operation,
                        requestId=op.id,
                        input=sv(op.input),
                        traceContext=operation_trace_context(op),
                    )
                    for op in request.operations
                ],
            )
        )
        entity_name = request.instance_id[1:].split("@", 1)[0]
        response = await self._broker.run(Kind.ENTITY, item, (request.instance_id, None), name=entity_name)
        return _batch_result(response)


def _batch_result(response: Any) -> EntityBatchResult:
    results: list[OperationOutcome] = []
    for r in response.results:
        if r.HasField("failure"):
            results.append(OperationOutcome(failure_details=from_pb_failure(r.failure.failureDetails)))
        else:
            # The SDKs send "" for an operation that returned nothing: that is no result, not JSON.
            results.append(OperationOutcome(result=opt(r.success, "result") or None))
    actions: list[EntityAction] = [a for a in (entity_action_from_pb(x) for x in response.actions) if a is not None]
    failure: FailureDetails | None = (
        from_pb_failure(response.failureDetails) if response.HasField("failureDetails") else None
    )
    return EntityBatchResult(
        results=tuple(results),
        actions=tuple(actions),
        entity_state=opt(response, "entityState"),
        failure_details=failure,
    )
