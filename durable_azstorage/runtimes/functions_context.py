"""The orchestration context JSON the Durable Functions extension hands a Python orchestrator.

Pure functions: model history in, the ``OrchestrationContextToString`` document out
(``DurableOrchestrationContext.from_json``). Events are serialised the way Newtonsoft writes DTFx events — PascalCase
members, ``EventType`` as its number, timestamps in ISO 8601 with ``Z`` — because the
azure-functions-durable SDK turns every key into an attribute and reads the ones it knows.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..model import ExecutionStartedEvent, HistoryEvent

__all__ = [
    "LONG_TIMER_INTERVAL",
    "input_for_sdk",
    "MAXIMUM_SHORT_TIMER",
    "context_json",
    "format_time",
    "pascal_event",
]

MAXIMUM_SHORT_TIMER = "6.00:00:00"
"""Azure Storage's maximum queue delay as the extension reports it (``MaximumDelayTime``)."""
LONG_TIMER_INTERVAL = "3.00:00:00"
"""Hop length of a long timer (``LongRunningTimerIntervalLength`` for Azure Storage)."""
_SCHEMA_V2 = 1
_SCHEMA_V3 = 2


def format_time(value: datetime) -> str:
    """``2024-01-01T00:00:00.1234560Z``-style text the SDK's date parser accepts."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pascal_event(event: HistoryEvent, *, played: bool) -> dict[str, Any]:
    """One history event as the extension serialises it (members in PascalCase)."""
    out: dict[str, Any] = {"EventType": int(event.event_type), "EventId": event.event_id, "IsPlayed": played}
    for f in dataclasses.fields(event):
        if f.name in ("event_id", "is_played"):
            continue
        out[_pascal(f.name)] = _value(getattr(event, f.name))
    failure = getattr(event, "failure_details", None)
    if "Reason" in out and out["Reason"] is None and failure is not None:
        # The SDK builds the exception text from Reason and Details; fill them from
        # FailureDetails when a writer only set that (as durabletask-style writers do).
        out["Reason"] = failure.error_message
        out["Details"] = out.get("Details") or failure.stack_trace
    return out


def context_json(
    instance_id: str,
    past: Sequence[HistoryEvent],
    new: Sequence[HistoryEvent],
) -> str:
    """The orchestrator trigger's input for one episode (current execution only)."""
    history = [pascal_event(e, played=True) for e in past]
    history += [pascal_event(e, played=False) for e in new]
    started = next((e for e in (*past, *new) if isinstance(e, ExecutionStartedEvent)), None)
    parent = started.parent_instance if started is not None else None
    parent_instance = parent.orchestration_instance if parent is not None else None
    document = {
        "history": history,
        "input": input_for_sdk(started.input if started is not None else None),
        "instanceId": instance_id,
        "isReplaying": bool(past),
        "parentInstanceId": parent_instance.instance_id if parent_instance is not None else None,
        "upperSchemaVersion": _SCHEMA_V2,
        "upperSchemaVersionNew": _SCHEMA_V3,
        "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
        "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER,
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    }
    return json.dumps(document)


def input_for_sdk(raw: str | None) -> str | None:
    """The orchestration input as the SDK's ``df_loads`` wants it: JSON text.

    The extension stores what the SDK sends JSON-encoded once more (DTFx serialises the
    string), and passes the decoded value — the SDK's own JSON text. Inputs written by other
    clients (a plain JSON document) are passed as they are.
    """
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return raw
        return value
    return raw


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_pascal(f.name): _value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value
