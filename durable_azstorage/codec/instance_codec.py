"""Instances table rows: what a client create and each checkpoint write, and how to read them.

Pure: no I/O. Column-for-column with AzureTableTrackingStore (``SetNewExecutionAsync``,
``UpdateStateAsync``); .NET workers de-duplicate start messages against these rows, so
a wrong column here silently drops orchestrations (docs/storage-layout.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import MessageDecodeError
from ..model import (
    ContinueAsNewEvent,
    ExecutionCompletedEvent,
    ExecutionResumedEvent,
    ExecutionStartedEvent,
    ExecutionSuspendedEvent,
    ExecutionTerminatedEvent,
    HistoryEvent,
    InstanceQuery,
    OrchestrationInstance,
    OrchestrationState,
    OrchestrationStatus,
    utc_now,
)
from .netjson import dumps, to_utc
from .odata import odata_datetime, odata_string
from .partitioning import escape_partition_key, unescape_partition_key
from .table_columns import blob_name_property, column_datetime, column_int, column_string

__all__ = [
    "query_filter",
    "blob_url",
    "instance_entity_for_create",
    "instance_entity_to_state",
    "instance_update_for_checkpoint",
    "is_blob_url",
]

_NULL = "null"  # DTAS's stand-in for "no value" in CustomStatus and Tags (issue #477)


def _tags_column(tags: Mapping[str, str] | None) -> str:
    """``JsonConvert.SerializeObject(tags)``: compact JSON, or ``"null"``."""
    return dumps(None if tags is None else dict(tags))


def _put(entity: dict[str, Any], name: str, value: Any) -> None:
    """Null properties are not sent (Tables would not store them), so a merge keeps the old value."""
    if value is not None:
        entity[name] = to_utc(value) if isinstance(value, datetime) else value


def instance_entity_for_create(
    event: ExecutionStartedEvent,
    task_hub_name: str,
    *,
    now: datetime | None = None,
    input_override: str | None = None,
) -> dict[str, Any]:
    """The ``Pending`` row a client inserts (or replaces) after enqueuing the start message.

    ``input_override`` is the blob URL DTAS stores when the start message itself went to a
    blob. ``CustomStatus`` is deliberately absent, as in DTAS.
    """
    instance = event.orchestration_instance
    if instance is None:
        raise ValueError("ExecutionStartedEvent.orchestration_instance is required to create an instance")
    entity: dict[str, Any] = {"PartitionKey": escape_partition_key(instance.instance_id), "RowKey": ""}
    _put(entity, "Input", input_override if input_override is not None else event.input)
    _put(entity, "CreatedTime", event.timestamp)
    _put(entity, "Name", event.name)
    _put(entity, "Version", event.version)
    entity["RuntimeStatus"] = OrchestrationStatus.Pending.name
    _put(entity, "LastUpdatedTime", now or utc_now())
    entity["TaskHubName"] = task_hub_name
    _put(entity, "ScheduledStartTime", event.scheduled_start_time)
    _put(entity, "ExecutionId", instance.execution_id)
    _put(entity, "Generation", event.generation)
    entity["Tags"] = _tags_column(event.tags)
    return entity


# (history property that may have gone to a blob, resulting status, Output value)
_CheckpointColumns = tuple[str, OrchestrationStatus, str | None]


def _status_columns(event: HistoryEvent) -> _CheckpointColumns | None:
    """Which Instances columns a status-changing event sets, following ``UpdateStateAsync``."""
    if isinstance(event, ContinueAsNewEvent):
        return "Result", OrchestrationStatus.ContinuedAsNew, event.result
    if isinstance(event, ExecutionCompletedEvent):
        output = str(event.failure_details) if event.failure_details is not None else event.result
        return "Result", event.orchestration_status, output
    if isinstance(event, ExecutionTerminatedEvent):
        return "Input", OrchestrationStatus.Terminated, event.input
    if isinstance(event, ExecutionSuspendedEvent):
        return "Reason", OrchestrationStatus.Suspended, event.reason
    if isinstance(event, ExecutionResumedEvent):
        return "Reason", OrchestrationStatus.Running, event.reason
    return None


def _offloaded_url(
    history_entity: Mapping[str, Any] | None, prop: str, to_url: Callable[[str], str] | None
) -> str | None:
    """The blob URL DTAS puts in Instances when the history row moved ``prop`` to a blob."""
    if history_entity is None or to_url is None:
        return None
    blob_name = history_entity.get(blob_name_property(prop))
    return to_url(blob_name) if isinstance(blob_name, str) else None


def instance_update_for_checkpoint(
    new_events: Sequence[HistoryEvent],
    *,
    instance_id: str,
    execution_id: str,
    custom_status: str | None,
    task_hub_name: str,
    now: datetime,
    history_entities: Sequence[Mapping[str, Any]] | None = None,
    blob_url_for: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The InsertOrMerge entity written after a checkpoint's history batches.

    ``history_entities`` (the rows as written, parallel to ``new_events``) and
    ``blob_url_for`` (blob name -> absolute URL) let the row point at offloaded
    Input/Output blobs exactly as DTAS does; without them values are written inline.
    """
    if not new_events:
        raise ValueError("a checkpoint has at least one new history event")
    if history_entities is not None and len(history_entities) != len(new_events):
        raise ValueError("history_entities must be parallel to new_events")
    entity: dict[str, Any] = {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": "",
        "CustomStatus": _NULL if custom_status is None else custom_status,
        "ExecutionId": execution_id,
        "LastUpdatedTime": to_utc(new_events[-1].timestamp),
        "TaskHubName": task_hub_name,
    }
    for i, event in enumerate(new_events):
        row = None if history_entities is None else history_entities[i]
        if isinstance(event, ExecutionStartedEvent):
            _put(entity, "Name", event.name)
            _put(entity, "Version", event.version)
            _put(entity, "CreatedTime", event.timestamp)
            entity["RuntimeStatus"] = OrchestrationStatus.Running.name
            entity["Tags"] = _tags_column(event.tags)
            _put(entity, "Generation", event.generation)
            _put(entity, "ScheduledStartTime", event.scheduled_start_time)
            _put(entity, "Input", _offloaded_url(row, "Input", blob_url_for) or event.input)
            continue
        columns = _status_columns(event)
        if columns is None:
            continue
        prop, status, output = columns
        entity["RuntimeStatus"] = status.name
        if isinstance(event, (ExecutionCompletedEvent, ExecutionTerminatedEvent)) and not isinstance(
            event, ContinueAsNewEvent
        ):
            entity["CompletedTime"] = to_utc(now)
        _put(entity, "Output", _offloaded_url(row, prop, blob_url_for) or output)
    return entity


def _runtime_status(raw: str | None) -> OrchestrationStatus | None:
    """``Enum.TryParse``: a name (case-sensitive) or a number; anything else is unknown (None)."""
    if raw is None:
        return None
    if raw in OrchestrationStatus.__members__:
        return OrchestrationStatus[raw]
    if re.fullmatch(r"-?[0-9]+", raw.strip()):
        try:
            return OrchestrationStatus(int(raw))
        except ValueError:
            return None
    return None


def _tags_from_column(text: str | None) -> dict[str, str] | None:
    if text is None or text in ("", _NULL):
        return None
    try:
        tags = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"column Tags: malformed JSON: {exc}") from exc
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise MessageDecodeError("column Tags: expected a JSON object of strings")
    return tags


def instance_entity_to_state(entity: Mapping[str, Any]) -> OrchestrationState:
    """The state an Instances row describes; Input/Output may still be blob URLs (see is_blob_url)."""
    partition_key = column_string(entity, "PartitionKey")
    if partition_key is None:
        raise MessageDecodeError("Instances row has no PartitionKey")
    custom_status = column_string(entity, "CustomStatus")
    return OrchestrationState(
        orchestration_instance=OrchestrationInstance(
            instance_id=unescape_partition_key(partition_key),
            execution_id=column_string(entity, "ExecutionId"),
        ),
        name=column_string(entity, "Name"),
        version=column_string(entity, "Version"),
        runtime_status=_runtime_status(column_string(entity, "RuntimeStatus")),
        input=column_string(entity, "Input"),
        output=column_string(entity, "Output"),
        custom_status=None if custom_status == _NULL else custom_status,
        created_time=column_datetime(entity, "CreatedTime"),
        last_updated_time=column_datetime(entity, "LastUpdatedTime"),
        completed_time=column_datetime(entity, "CompletedTime"),
        scheduled_start_time=column_datetime(entity, "ScheduledStartTime"),
        generation=column_int(entity, "Generation") or 0,  # an int (not int?) column in DTAS
        tags=_tags_from_column(column_string(entity, "Tags")),
        task_hub_name=column_string(entity, "TaskHubName"),
    )


_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


def is_blob_url(value: str) -> bool:
    """DTAS's large-value test, ``Uri.IsWellFormedUriString(value, Absolute)``, for http(s).

    Any other stored value (JSON, plain text) is data, even if it happens to contain a URL.
    """
    if not _URI_CHARS.match(value) or re.search(r"%(?![0-9A-Fa-f]{2})", value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def blob_url(container_url: str, blob_name: str) -> str:
    """``MessageManager.GetBlobUrl``: each '/'-separated segment ``Uri.EscapeDataString``-escaped."""
    segments = (quote(segment, safe="") for segment in blob_name.split("/"))
    return f"{container_url.rstrip('/')}/{'/'.join(segments)}"


def query_filter(query: InstanceQuery) -> str | None:
    """OData filter of ``OrchestrationInstanceStatusQueryCondition.GetODataFilter``.

    The prefix becomes a PartitionKey range on the *escaped* prefix (keys are escaped ids);
    entity exclusion only applies without a prefix, as in DTAS.
    """
    conditions: list[str] = []
    created_from, created_to, prefix = query.created_from, query.created_to, query.instance_id_prefix
    if created_from is not None:
        conditions.append(f"CreatedTime ge {odata_datetime(created_from)}")
    if created_to is not None:
        conditions.append(f"CreatedTime le {odata_datetime(created_to)}")
    if query.updated_from is not None:
        conditions.append(f"LastUpdatedTime ge {odata_datetime(query.updated_from)}")
    if query.updated_to is not None:
        conditions.append(f"LastUpdatedTime le {odata_datetime(query.updated_to)}")
    if query.name_prefix:
        conditions.append(f"Name ge {odata_string(query.name_prefix)}")
        conditions.append(f"Name lt {odata_string(_successor(query.name_prefix))}")
    statuses = sorted(query.runtime_status or ())  # a set of statuses (empty: no filter), not one status
    if statuses:
        conditions.append(" or ".join(f"RuntimeStatus eq {odata_string(s.name)}" for s in statuses))
    if query.task_hub_names:
        hubs = sorted(query.task_hub_names)
        conditions.append(" or ".join(f"TaskHubName eq {odata_string(name)}" for name in hubs))
    if prefix:
        low = escape_partition_key(prefix)
        high = _successor(low)
        conditions.append(f"PartitionKey ge {odata_string(low)}")
        conditions.append(f"PartitionKey lt {odata_string(high)}")
    elif query.exclude_entities:
        conditions.append("PartitionKey lt '@' or PartitionKey ge 'A'")
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return " and ".join(f"({c})" for c in conditions)


def _successor(prefix: str) -> str:
    """The smallest string after every string that starts with ``prefix``: a range's upper bound."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
