"""JSON shapes shared by the HTTP API and the CLI: the Durable Functions payloads.

``status_payload`` is ``StatusResponsePayload`` (camelCase, timestamps without fractions),
``history_payload`` the reshaped ``historyEvents`` list (PascalCase keys, as the extension
emits them) and ``management_urls`` the ``HttpManagementPayload`` of
``CreateCheckStatusResponse`` (``HttpManagementPayload``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from ..model import (
    EventType,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationState,
    TaskScheduledEvent,
)

__all__ = [
    "BASE_PATH",
    "format_time",
    "history_payload",
    "management_urls",
    "parse_json_or_text",
    "raw_event_dict",
    "status_payload",
]

BASE_PATH = "/runtime/webhooks/durabletask"

_DROPPED = frozenset({EventType.OrchestratorStarted, EventType.OrchestratorCompleted})
_RESULT_TYPES = frozenset({EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted})


def format_time(value: datetime | None) -> str | None:
    """``DateTime.ToString("s") + "Z"``: UTC, whole seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_json_or_text(value: str | None) -> Any:
    """Stored payloads are JSON text; a value that is not JSON is returned as a string."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def status_payload(
    state: OrchestrationState,
    *,
    show_input: bool = True,
    history: Sequence[HistoryEvent] | None = None,
    show_history_output: bool = False,
) -> dict[str, Any]:
    """``StatusResponsePayload``; ``historyEvents`` only when a history is given."""
    payload: dict[str, Any] = {
        "name": state.name,
        "instanceId": state.instance_id,
        "runtimeStatus": state.runtime_status.name if state.runtime_status is not None else "Unknown",
        "input": parse_json_or_text(state.input) if show_input else None,
        "customStatus": parse_json_or_text(state.custom_status),
        "output": parse_json_or_text(state.output),
        "createdTime": format_time(state.created_time),
        "lastUpdatedTime": format_time(state.last_updated_time),
    }
    if history is not None:
        payload["historyEvents"] = history_payload(history, show_input=show_input, show_output=show_history_output)
    return payload


def history_payload(
    events: Sequence[HistoryEvent], *, show_input: bool = True, show_output: bool = False
) -> list[dict[str, Any]]:
    """The extension's reshaped history (EXT ``DurableClient`` ``ConvertHistoryToJson``)."""
    scheduled = {e.event_id: e for e in events if isinstance(e, TaskScheduledEvent)}
    out: list[dict[str, Any]] = []
    for event in events:
        if event.event_type in _DROPPED or event.event_type == EventType.TaskScheduled:
            continue
        row: dict[str, Any] = {"EventType": event.event_type.name, "Timestamp": format_time(event.timestamp)}
        if isinstance(event, ExecutionStartedEvent):
            row["FunctionName"] = event.name
            if show_input:
                row["Input"] = parse_json_or_text(event.input)
        elif isinstance(event, ExecutionCompletedEvent):
            row["OrchestrationStatus"] = event.orchestration_status.name
            row["Result"] = parse_json_or_text(event.result)
            if event.failure_details is not None:
                row["FailureDetails"] = _jsonable(event.failure_details)
        elif event.event_type in (EventType.TaskCompleted, EventType.TaskFailed):
            origin = scheduled.get(getattr(event, "task_scheduled_id", -1))
            row["FunctionName"] = origin.name if origin else None
            row["ScheduledTime"] = format_time(origin.timestamp) if origin else None
            if show_input and origin is not None:
                row["Input"] = parse_json_or_text(origin.input)
            _copy_fields(event, row, skip={"task_scheduled_id", "result"})
        else:
            _copy_fields(event, row, skip={"timer_id", "orchestration_instance", "parent_instance", "tags"})
        if show_output and event.event_type in _RESULT_TYPES:
            row["Result"] = parse_json_or_text(getattr(event, "result", None))
        out.append(row)
    return out


def raw_event_dict(event: HistoryEvent) -> dict[str, Any]:
    """Every field of one event, PascalCase, ``EventType`` as a name (``func durable get-history``)."""
    row: dict[str, Any] = {"EventType": event.event_type.name, "EventId": event.event_id}
    _copy_fields(event, row, skip={"event_id"})
    return row


def _copy_fields(event: HistoryEvent, row: dict[str, Any], *, skip: set[str]) -> None:
    for f in dataclasses.fields(event):
        if f.name in skip or f.name == "is_played":
            continue
        value = getattr(event, f.name)
        if value is None:
            continue
        key = "".join(part[:1].upper() + part[1:] for part in f.name.split("_"))
        if key in row:
            continue
        row[key] = parse_json_or_text(value) if f.name in {"input", "result"} else _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "".join(p[:1].upper() + p[1:] for p in f.name.split("_")): _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def management_urls(
    instance_id: str,
    base_url: str,
    *,
    task_hub: str,
    connection: str = "Storage",
    code: str | None = None,
) -> dict[str, str]:
    """``HttpManagementPayload``: the URLs ``CreateCheckStatusResponse`` returns for an instance.

    ``base_url`` is the scheme and authority (optionally a path prefix) of the server; the
    Durable Functions base path is appended.
    """
    root = base_url.rstrip("/") + BASE_PATH
    instance = f"{root}/instances/{quote(instance_id, safe='')}"
    params = {"taskHub": task_hub, "connection": connection}
    if code:
        params["code"] = code
    suffix = urlencode(params)
    return {
        "id": instance_id,
        "purgeHistoryDeleteUri": f"{instance}?{suffix}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{suffix}",
        "statusQueryGetUri": f"{instance}?{suffix}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{suffix}",
        "restartPostUri": f"{instance}/restart?{suffix}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{suffix}",
    }
