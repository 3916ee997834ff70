"""``entity:{name}:{operation}`` spans: the caller's side (signal PRODUCER, call CLIENT) and one SERVER
span per operation executed in an entity batch.

The context rides in the request as DTAS carries it: ``RequestMessage.parentTraceContext`` (kept
in the entity's queued requests, so a request that waits behind a lock keeps its parent). The
orchestration side's span gets a span id derived from the orchestration span and the request id —
the request is sent before the episode's checkpoint, so a replayed episode stamps the same id —
and is emitted once, after the checkpoint that sends it, lasting from the episode to that commit
(a call's wait for its response is not part of it: the response is an ordinary history event).
Entity batches are at-least-once, like activities: a batch retried after a crash emits its
operation spans again, one set per attempt. Operations of one batch run in one call of the
runtime, so their spans share the batch's start and end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..model import EventRaisedEvent, TaskMessage
from ..model.entities import RequestMessage, is_request_event
from . import tracing

__all__ = ["emit_operation_spans", "emit_request_spans", "request_traceparent", "signal_span",
           "stamp_entity_requests", "stamp_request"]

ATTR_OPERATION = "durabletask.task.operation"
ATTR_ERROR = "durabletask.entity.error_message"


def request_traceparent(request: RequestMessage) -> str | None:
    """``parentTraceContext.TraceParent`` of a request (member names read case-insensitively)."""
    ctx = request.extra.get("parentTraceContext")
    if not isinstance(ctx, dict):
        return None
    value = next((v for k, v in ctx.items() if k.lower() == "traceparent"), None)
    return value if isinstance(value, str) else None


def stamp_request(request: RequestMessage, traceparent: str | None) -> None:
    """Keep the caller's context in the request (persisted with it while it waits in the entity's queue)."""
    if tracing.is_enabled() and traceparent and "parentTraceContext" not in request.extra:
        request.extra["parentTraceContext"] = {"TraceParent": traceparent, "TraceState": None}


@contextmanager
def signal_span(entity: str, operation: str, instance_id: str) -> Iterator[str | None]:
    """The client's ``entity:{name}:{operation}`` PRODUCER span; yields the traceparent to stamp."""
    attributes = {
        tracing.ATTR_TYPE: "entity",
        tracing.ATTR_NAME: f"{entity}:{operation}",
        tracing.ATTR_TARGET: instance_id,
        ATTR_OPERATION: "signal_entity",
    }
    with tracing.producer_span("entity", f"{entity}:{operation}", attributes) as ctx:
        yield ctx.trace_parent if ctx is not None else None


def _entity_name(instance_id: str) -> str:
    return instance_id.split("@")[1] if instance_id.count("@") >= 2 else instance_id


def _requests(messages: Sequence[TaskMessage]) -> list[tuple[TaskMessage, RequestMessage]]:
    from ..codec import entity_codec

    out = []
    for message in messages:
        event = message.event
        if not isinstance(event, EventRaisedEvent) or not is_request_event(event.name):
            continue
        if not message.orchestration_instance.instance_id.startswith("@"):
            continue
        try:
            request = entity_codec.decode_request(event.input or "")
        except Exception:  # noqa: S112 - not ours to judge here; the entity drops malformed requests
            continue
        if request.operation is not None and not request.is_lock_request:
            out.append((message, request))
    return out


def _caller_span(orchestration_traceparent: str, request_id: str) -> tuple[int, int, int] | None:
    own = tracing._parse(orchestration_traceparent)
    if own is None:
        return None
    digest = hashlib.sha256(f"{own[1]:016x}:{request_id}".encode()).digest()
    return own[0], int.from_bytes(digest[:8], "big") or 1, own[2]


def stamp_entity_requests(messages: Sequence[TaskMessage], ctx: Any) -> None:
    """Before the sends: parent each entity request from this orchestration to its caller span."""
    own = getattr(ctx, "id", None)
    if not tracing.is_enabled() or not own:
        return
    from ..codec import entity_codec

    for message, request in _requests(messages):
        span = _caller_span(own, request.id)
        if span is None or "parentTraceContext" in request.extra:
            continue
        stamp_request(request, tracing._traceparent(*span))
        event = message.event
        assert isinstance(event, EventRaisedEvent)
        event.input = entity_codec.encode_request(request)


def emit_request_spans(instance_id: str, orchestration_ctx: Any, messages: Sequence[TaskMessage],
                       start: datetime, end: datetime) -> None:
    """After the checkpoint: the PRODUCER (signal) / CLIENT (call) span of each entity request sent."""
    own = getattr(orchestration_ctx, "id", None)
    if not tracing.is_enabled() or not own:
        return
    parent = tracing._parse(own)
    for message, request in _requests(messages):
        span = _caller_span(own, request.id)
        if span is None or request_traceparent(request) != tracing._traceparent(*span):
            continue
        target = message.orchestration_instance.instance_id
        name = f"{_entity_name(target)}:{request.operation}"
        attributes = {
            tracing.ATTR_TYPE: "entity",
            tracing.ATTR_NAME: name,
            tracing.ATTR_INSTANCE_ID: instance_id,
            tracing.ATTR_TARGET: target,
            ATTR_OPERATION: "signal_entity" if request.is_signal else "call_entity",
        }
        tracing._emit_finished(tracing.span_name("entity", name), span, parent,
                               "PRODUCER" if request.is_signal else "CLIENT", attributes, start, end, None)


def emit_operation_spans(instance_id: str, requests: Sequence[RequestMessage], outcomes: Sequence[Any],
                         start: datetime, end: datetime) -> None:
    """One SERVER span per operation this batch executed, child of its caller's span."""
    if not tracing.is_enabled():
        return
    entity = _entity_name(instance_id)
    for request, outcome in zip(requests, outcomes, strict=False):
        parent = tracing._parse(request_traceparent(request))
        trace_id = parent[0] if parent else tracing._new_span_id() << 64 | tracing._new_span_id()
        own = (trace_id, tracing._new_span_id(), parent[2] if parent else 1)
        failure = getattr(outcome, "failure_details", None)
        name = f"{entity}:{request.operation or ''}"
        attributes: dict[str, Any] = {
            tracing.ATTR_TYPE: "entity",
            tracing.ATTR_NAME: name,
            tracing.ATTR_INSTANCE_ID: instance_id,
            ATTR_OPERATION: "signal_entity" if request.is_signal else "call_entity",
        }
        if failure is not None:
            attributes[ATTR_ERROR] = failure.error_message or ""
        tracing._emit_finished(tracing.span_name("entity", name), own, parent, "SERVER", attributes, start, end,
                               (failure.error_message or "failed") if failure is not None else None)
