"""The typed boundary to the generated gRPC code, and pure conversions to its messages.

We use the stubs the ``durabletask`` wheel ships (``durabletask.internal.orchestrator_service_pb2``
and ``_grpc``), pinned with the package (1.12.*), rather than generating our own from the
published proto: the in-process runtime already converts history to exactly these message
classes, and a second generated copy of the same proto (it has no ``package``) would register
the same message names twice in protobuf's default descriptor pool, which fails at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as _pb
from durabletask.internal import orchestrator_service_pb2_grpc as _pb_grpc
from google.protobuf import empty_pb2 as _empty_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import timestamp_pb2 as _timestamp_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import wrappers_pb2 as _wrappers_pb2  # type: ignore[import-untyped, unused-ignore]

from ..model import FailureDetails, HistoryEvent, OrchestrationState
from ..runtimes.durabletask import to_pb_event, to_pb_failure

pb: Any = _pb
pb_grpc: Any = _pb_grpc
empty_pb2: Any = _empty_pb2
timestamp_pb2: Any = _timestamp_pb2
wrappers_pb2: Any = _wrappers_pb2

__all__ = [
    "empty_pb2",
    "from_ts",
    "history_chunks",
    "opt",
    "parse_failure_text",
    "pb",
    "pb_grpc",
    "state_pb",
    "sv",
    "ts",
    "wrappers_pb2",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ts(value: datetime) -> Any:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value)
    return stamp


def from_ts(stamp: Any) -> datetime:
    value: datetime = stamp.ToDatetime(tzinfo=timezone.utc)
    return value


def sv(value: str | None) -> Any:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def opt(msg: Any, name: str) -> str | None:
    """A ``StringValue`` field as ``str | None`` (unset stays None)."""
    return str(getattr(msg, name).value) if msg.HasField(name) else None


def opt_time(msg: Any, name: str) -> datetime | None:
    """A ``Timestamp`` field; unset (or the epoch some SDKs send for "none") is None."""
    if not msg.HasField(name):
        return None
    value = from_ts(getattr(msg, name))
    return None if value <= _EPOCH else value


def parse_failure_text(text: str | None) -> FailureDetails:
    """DTAS keeps only ``FailureDetails.ToString()`` (``"Type: message"``) in the Instances row."""
    error_type, sep, message = (text or "").partition(": ")
    if not sep or " " in error_type:
        return FailureDetails(error_type="", error_message=text or "")
    return FailureDetails(error_type=error_type, error_message=message)


def state_pb(state: OrchestrationState, *, payloads: bool, failure: FailureDetails | None = None) -> Any:
    """An Instances row as the protocol's ``OrchestrationState``."""
    fields: dict[str, Any] = {
        "instanceId": state.instance_id,
        "name": state.name or "",
        "version": sv(state.version),
        "orchestrationStatus": int(state.runtime_status) if state.runtime_status is not None else 0,
        "executionId": sv(state.execution_id),
        "tags": dict(state.tags or {}),
    }
    for field, value in (
        ("scheduledStartTimestamp", state.scheduled_start_time),
        ("createdTimestamp", state.created_time),
        ("lastUpdatedTimestamp", state.last_updated_time),
        ("completedTimestamp", state.completed_time),
    ):
        if value is not None:
            fields[field] = ts(value)
    parent = state.parent_instance
    if parent is not None and parent.orchestration_instance is not None:
        fields["parentInstanceId"] = sv(parent.orchestration_instance.instance_id)
    if state.custom_status is not None:
        fields["customStatus"] = sv(state.custom_status)
    if failure is not None:
        fields["failureDetails"] = to_pb_failure(failure)
    if payloads:
        fields["input"] = sv(state.input)
        if failure is None:
            fields["output"] = sv(state.output)
    return pb.OrchestrationState(**fields)


def history_chunks(events: Iterable[HistoryEvent], chunk_size: int = 200) -> Iterator[Any]:
    """History as ``HistoryChunk`` messages (kinds the protocol has no event for are skipped)."""
    chunk: list[Any] = []
    for event in events:
        converted = to_pb_event(event)
        if converted is None:
            continue
        chunk.append(converted)
        if len(chunk) >= chunk_size:
            yield pb.HistoryChunk(events=chunk)
            chunk = []
    if chunk:
        yield pb.HistoryChunk(events=chunk)
