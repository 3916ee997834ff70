"""OpenTelemetry spans with the names, kinds and attributes Durable Functions and durabletask use.

Off by default: until :func:`enable` (or :func:`durable_azstorage.telemetry.configure`) runs, every
helper here returns at its first line and ``opentelemetry`` is never imported — zero overhead.

The trace context travels as DTAS stores it: in ``ParentTraceContext`` of ``ExecutionStarted``,
``TaskScheduled`` and ``EventRaised`` (W3C ``traceparent``/``tracestate``). The orchestration span
is *create-and-end*: its span id and start time are chosen when the first episode runs and kept in
the ``ExecutionStarted`` event's ``ParentTraceContext.SpanId`` / ``ActivityStartTime`` (committed with
the history), every scheduled activity and sub-orchestration is parented to that id, and the span
itself is emitted once, after the checkpoint that makes the instance terminal. A replayed or
re-delivered episode therefore emits nothing twice, and a crash loses at most the span of work that
had not been committed (which runs again and emits then).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..model import (
    DistributedTraceContext,
    EventRaisedEvent,
    ExecutionStartedEvent,
    FailureDetails,
    HistoryEvent,
    OrchestrationStatus,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskMessage,
    TaskScheduledEvent,
)

__all__ = [
    "TRACER_NAME",
    "activity_span",
    "disable",
    "emit_client_spans",
    "emit_orchestration_span",
    "emit_timer_span",
    "enable",
    "event_raised_span",
    "is_enabled",
    "orchestration_context",
    "producer_span",
    "stamp_scheduling",
    "stamp_outbound",
]

TRACER_NAME = "durable_azstorage"
log = logging.getLogger(__name__)

_state: dict[str, Any] = {"tracer": None, "provider": None}

ATTR_TYPE = "durabletask.type"
ATTR_NAME = "durabletask.task.name"
ATTR_VERSION = "durabletask.task.version"
ATTR_INSTANCE_ID = "durabletask.task.instance_id"
ATTR_EXECUTION_ID = "durabletask.task.execution_id"
ATTR_TASK_ID = "durabletask.task.task_id"
ATTR_STATUS = "durabletask.task.status"
ATTR_TARGET = "durabletask.event.target_instance_id"
ATTR_FIRE_AT = "durabletask.fire_at"


def enable(tracer_provider: Any | None = None) -> None:
    """Start emitting spans through ``tracer_provider`` (default: the global one)."""
    from opentelemetry import trace

    provider = tracer_provider or trace.get_tracer_provider()
    _state["provider"] = provider
    _state["tracer"] = trace.get_tracer(TRACER_NAME, tracer_provider=provider)


#: The ``ParentTraceContext`` of the work item being run (an activity's ``TaskScheduled``), for
#: runtimes that hand it on to another process (the gRPC sidecar's ``ActivityRequest``).
current_task_context: contextvars.ContextVar[DistributedTraceContext | None] = contextvars.ContextVar(
    "durable_azstorage_task_trace_context", default=None
)


def disable() -> None:
    _state["tracer"] = None
    _state["provider"] = None


def is_enabled() -> bool:
    return _state["tracer"] is not None


def span_name(kind: str, name: str | None, version: str | None = None) -> str:
    """``{type}:{name}`` or ``{type}:{name}@({version})``, as DTFx ``TraceHelper`` names spans."""
    base = f"{kind}:{name or ''}"
    return f"{base}@({version})" if version else base


# ---------------------------------------------------------------------------- W3C trace context


def _parse(traceparent: str | None) -> tuple[int, int, int] | None:
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) != 4:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, flags


def _traceparent(trace_id: int, span_id: int, flags: int = 1) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def _new_span_id() -> int:
    return secrets.randbits(64) or 1


def _parent_context(traceparent: str | None, tracestate: str | None = None) -> Any:
    """An OpenTelemetry context whose current span is the remote parent, or None."""
    parsed = _parse(traceparent)
    if parsed is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    state = TraceState.from_header([tracestate]) if tracestate else None
    span_context = SpanContext(parsed[0], parsed[1], is_remote=True, trace_flags=TraceFlags(parsed[2]),
                               trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def _current_traceparent() -> str | None:
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return _traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags))


# ---------------------------------------------------------------------------- client side


@contextmanager
def producer_span(
    kind: str, name: str | None, attributes: Mapping[str, Any]
) -> Iterator[DistributedTraceContext | None]:
    """A PRODUCER span (``create_orchestration:{name}``, ``orchestration_event:{name}``) around an enqueue.

    Yields the trace context to store in the message, so the consumer's span is its child.
    """
    tracer = _state["tracer"]
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(span_name(kind, name), kind=SpanKind.PRODUCER, attributes=dict(attributes)):
        yield DistributedTraceContext(trace_parent=_current_traceparent())


@contextmanager
def event_raised_span(event: EventRaisedEvent, instance_id: str) -> Iterator[None]:
    """``orchestration_event:{name}`` PRODUCER span; stamps the event's ``ParentTraceContext``."""
    attributes = {ATTR_TYPE: "event", ATTR_NAME: event.name or "", ATTR_TARGET: instance_id}
    with producer_span("orchestration_event", event.name, attributes) as context:
        if context is not None and event.parent_trace_context is None:
            event.parent_trace_context = context
        yield


# ---------------------------------------------------------------------------- orchestrations


def orchestration_context(started: ExecutionStartedEvent, now: datetime) -> DistributedTraceContext | None:
    """The orchestration span's own context, kept in history from the first episode on.

    The span id is derived from the instance and execution ids, not drawn at random: the first
    episode sends its outbound messages *before* its history is committed, so an episode replayed
    after a crash in between must pick the same id the already-sent activity messages carry.
    ``ParentTraceContext`` keeps the parent's ``TraceParent`` and gains ``SpanId``/``Id`` and
    ``ActivityStartTime`` (the start message's time) when an enabled worker first runs it.
    """
    if _state["tracer"] is None:
        return None
    ctx = started.parent_trace_context
    if ctx is None:
        ctx = started.parent_trace_context = DistributedTraceContext()
    if ctx.span_id is None or _parse(ctx.id) is None:
        execution = started.orchestration_instance.execution_id if started.orchestration_instance else ""
        digest = hashlib.sha256(f"{execution}:{ctx.trace_parent or ''}".encode()).digest()
        parent = _parse(ctx.trace_parent)
        trace_id = parent[0] if parent else (int.from_bytes(digest[8:24], "big") or 1)
        span_id = int.from_bytes(digest[:8], "big") or 1
        ctx.span_id = f"{span_id:016x}"
        ctx.activity_start_time = ctx.activity_start_time or started.timestamp or now
        ctx.id = _traceparent(trace_id, span_id, parent[2] if parent else 1)
    return ctx


def _own_traceparent(ctx: DistributedTraceContext) -> str | None:
    return ctx.id if _parse(ctx.id) else None


# ---------------------------------------------------------------------------- scheduled work (CLIENT spans)


def stamp_scheduling(
    new_history: Sequence[HistoryEvent],
    messages: Sequence[TaskMessage],
    ctx: DistributedTraceContext | None,
    episode: int,
) -> None:
    """Give each activity and sub-orchestration this episode schedules its CLIENT span id.

    As DTFx traces it: orchestration → ``activity:{name}`` CLIENT (scheduling to result) →
    ``activity:{name}`` SERVER (the run), and likewise ``orchestration:{name}`` CLIENT → SERVER for
    a sub-orchestration. The CLIENT span id rides where DTAS keeps it — the ``TaskScheduled``
    event's ``ParentTraceContext`` (history row and work-item message) and the
    ``SubOrchestrationInstanceCreated`` event's ``ClientSpanId`` (the child's start message carries it
    as its parent) — and the span itself is emitted once, when the result is committed
    (:func:`emit_client_spans`). The id is derived from the orchestration span, the task id and the
    episode, not drawn: an episode run again after a crash before its checkpoint re-sends its work
    with the ids the first run's already-sent messages carry, and a retried activity (same task id,
    later episode) gets a span of its own.
    """
    if ctx is None or (own := _parse(ctx.id)) is None:
        return
    scheduled = {e.event_id: e for e in new_history if isinstance(e, TaskScheduledEvent)}
    created = {e.event_id: e for e in new_history if isinstance(e, SubOrchestrationInstanceCreatedEvent)}
    for message in messages:
        event = message.event
        if isinstance(event, TaskScheduledEvent) and event.parent_trace_context is None:
            client = _client_span_id(own, event.event_id, episode)
            event.parent_trace_context = _context_of(own, client, ctx.trace_state)
            recorded = scheduled.get(event.event_id)
            if recorded is not None and recorded.parent_trace_context is None:
                recorded.parent_trace_context = _context_of(own, client, ctx.trace_state)
        elif (
            isinstance(event, ExecutionStartedEvent)
            and event.parent_instance is not None
            and event.parent_trace_context is None
        ):
            task_id = event.parent_instance.task_schedule_id
            client = _client_span_id(own, task_id, episode)
            event.parent_trace_context = _context_of(own, client, ctx.trace_state)
            sub = created.get(task_id)
            if sub is not None and sub.client_span_id is None:
                sub.client_span_id = f"{client:016x}"


def _client_span_id(own: tuple[int, int, int], task_id: int, episode: int) -> int:
    digest = hashlib.sha256(f"{own[1]:016x}:{task_id}:{episode}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _context_of(own: tuple[int, int, int], span_id: int, trace_state: str | None) -> DistributedTraceContext:
    return DistributedTraceContext(trace_parent=_traceparent(own[0], span_id, own[2]), trace_state=trace_state)


def emit_client_spans(
    started: ExecutionStartedEvent, instance_id: str, past: Sequence[HistoryEvent], new: Sequence[HistoryEvent]
) -> None:
    """The CLIENT spans of the scheduled work whose results this committed episode applied."""
    if _state["tracer"] is None:
        return
    ctx = started.parent_trace_context
    own = _parse(ctx.id) if ctx is not None else None
    if own is None:
        return
    for result in new:
        if isinstance(result, TaskCompletedEvent | TaskFailedEvent):
            task = _last_before(past, TaskScheduledEvent, result.task_scheduled_id)
            if task is not None and task.parent_trace_context is not None:
                client = _parse(task.parent_trace_context.trace_parent)
                _emit_client(own, client, "activity", task.name, task.version, instance_id, task, result)
        elif isinstance(result, SubOrchestrationInstanceCompletedEvent | SubOrchestrationInstanceFailedEvent):
            sub = _last_before(past, SubOrchestrationInstanceCreatedEvent, result.task_scheduled_id)
            if sub is not None and sub.client_span_id:
                client = _parse(_traceparent(own[0], int(sub.client_span_id, 16), own[2]))
                _emit_client(own, client, "orchestration", sub.name, sub.version, sub.instance_id or "", sub, result)


_Scheduling = TypeVar("_Scheduling", TaskScheduledEvent, SubOrchestrationInstanceCreatedEvent)


def _last_before(past: Sequence[HistoryEvent], kind: type[_Scheduling], event_id: int) -> _Scheduling | None:
    """The latest scheduling event with ``event_id`` (a retried durabletask activity reuses its id)."""
    for event in reversed(past):
        if isinstance(event, kind) and event.event_id == event_id:
            return event
    return None


def _emit_client(
    own: tuple[int, int, int],
    client: tuple[int, int, int] | None,
    kind: str,
    name: str | None,
    version: str | None,
    instance_id: str,
    scheduled: HistoryEvent,
    result: HistoryEvent,
) -> None:
    if client is None or client[1] == own[1] or client[0] != own[0]:
        return  # scheduled before CLIENT spans existed (parented straight to the orchestration)
    attributes: dict[str, Any] = {ATTR_TYPE: kind, ATTR_NAME: name or "", ATTR_INSTANCE_ID: instance_id,
                                  ATTR_TASK_ID: scheduled.event_id}
    if version:
        attributes[ATTR_VERSION] = version
    failure = getattr(result, "failure_details", None)
    failed = isinstance(result, TaskFailedEvent | SubOrchestrationInstanceFailedEvent)
    error = (failure.error_message if failure else getattr(result, "reason", None) or "failed") if failed else None
    end = result.timestamp or scheduled.timestamp
    start = scheduled.timestamp or end
    if start is None or end is None:
        return
    _emit_finished(span_name(kind, name, version), client, own, "CLIENT", attributes, start, end, error)


def stamp_outbound(messages: list[TaskMessage], ctx: DistributedTraceContext | None) -> None:
    """Parent scheduled activities and sub-orchestrations to the orchestration span."""
    if ctx is None:
        return
    own = _own_traceparent(ctx)
    if own is None:
        return
    for message in messages:
        event = message.event
        if not isinstance(event, TaskScheduledEvent | ExecutionStartedEvent | EventRaisedEvent):
            continue
        if event.parent_trace_context is None:
            event.parent_trace_context = DistributedTraceContext(trace_parent=own, trace_state=ctx.trace_state)


def emit_orchestration_span(
    started: ExecutionStartedEvent,
    instance_id: str,
    status: OrchestrationStatus,
    failure: FailureDetails | None,
    end: datetime,
) -> None:
    """The ``orchestration:{name}`` SERVER span, emitted once with its pre-chosen id (see module doc)."""
    if _state["tracer"] is None:
        return
    ctx = started.parent_trace_context
    own = _parse(ctx.id) if ctx is not None else None
    if ctx is None or own is None:
        return
    attributes = {
        ATTR_TYPE: "orchestration",
        ATTR_NAME: started.name or "",
        ATTR_INSTANCE_ID: instance_id,
        ATTR_STATUS: status.name,
    }
    if started.version:
        attributes[ATTR_VERSION] = started.version
    if started.orchestration_instance and started.orchestration_instance.execution_id:
        attributes[ATTR_EXECUTION_ID] = started.orchestration_instance.execution_id
    start = ctx.activity_start_time or started.timestamp or end
    _emit_finished(
        span_name("orchestration", started.name, started.version), own, _parse(ctx.trace_parent), "SERVER",
        attributes, start, end, failure.error_message if failure else None,
    )


def emit_timer_span(
    orchestration: ExecutionStartedEvent, timer_id: int, created: datetime, fire_at: datetime, fired: datetime
) -> None:
    """``orchestration:{name}:timer`` INTERNAL span from the timer's creation to its firing."""
    if _state["tracer"] is None:
        return
    ctx = orchestration.parent_trace_context
    own = _parse(ctx.id) if ctx is not None else None
    if own is None:
        return
    attributes = {
        ATTR_TYPE: "timer",
        ATTR_NAME: orchestration.name or "",
        ATTR_TASK_ID: timer_id,
        ATTR_FIRE_AT: fire_at.astimezone(timezone.utc).isoformat(),
    }
    child = (own[0], _new_span_id(), own[2])
    _emit_finished(f"orchestration:{orchestration.name or ''}:timer", child, own, "INTERNAL", attributes,
                   created, fired, None)


def _emit_finished(
    name: str,
    own: tuple[int, int, int],
    parent: tuple[int, int, int] | None,
    kind: str,
    attributes: dict[str, Any],
    start: datetime,
    end: datetime,
    error: str | None,
) -> None:
    """Hand an already finished span with a chosen id to the SDK provider's processors.

    The OpenTelemetry API has no way to start a span with a given id; the SDK's ``ReadableSpan``
    and the provider's span processor do (the durabletask SDK emits its orchestration spans the
    same way). With a provider that is not the SDK's the span is skipped, never faked.
    """
    try:
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
    except ImportError:
        return
    provider = _state["provider"]
    processor = getattr(provider, "_active_span_processor", None)
    if not isinstance(provider, TracerProvider) or processor is None:
        return
    context = SpanContext(own[0], own[1], is_remote=False, trace_flags=TraceFlags(own[2]))
    parent_context = (
        SpanContext(parent[0], parent[1], is_remote=True, trace_flags=TraceFlags(parent[2])) if parent else None
    )
    status = Status(StatusCode.ERROR, error) if error is not None else Status(StatusCode.UNSET)
    span = ReadableSpan(
        name=name,
        context=context,
        parent=parent_context,
        kind=getattr(SpanKind, kind),
        attributes=attributes,
        start_time=_ns(start),
        end_time=max(_ns(end), _ns(start)),
        resource=provider.resource,
        instrumentation_scope=InstrumentationScope(TRACER_NAME),
        status=status,
    )
    try:
        processor.on_end(span)
    except Exception:  # an exporter's failure never fails an episode
        log.debug("telemetry.span_export_failed", extra={"span": name}, exc_info=True)


def _ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1_000_000_000)


# ---------------------------------------------------------------------------- activities


@contextmanager
def activity_span(event: TaskScheduledEvent, instance_id: str) -> Iterator[Any]:
    """The ``activity:{name}`` SERVER span of one execution attempt, child of the orchestration span."""
    tracer = _state["tracer"]
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    ctx = event.parent_trace_context
    parent = _parent_context(ctx.trace_parent, ctx.trace_state) if ctx is not None else None
    attributes = {
        ATTR_TYPE: "activity",
        ATTR_NAME: event.name or "",
        ATTR_INSTANCE_ID: instance_id,
        ATTR_TASK_ID: event.event_id,
    }
    if event.version:
        attributes[ATTR_VERSION] = event.version
    with tracer.start_as_current_span(
        span_name("activity", event.name, event.version), context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def record_activity_outcome(span: Any, failure: FailureDetails | None) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if failure is not None:
        span.set_status(Status(StatusCode.ERROR, failure.error_message))
        span.set_attribute(ATTR_STATUS, "Failed")
    else:
        span.set_attribute(ATTR_STATUS, "Completed")
