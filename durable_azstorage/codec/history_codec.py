"""History table rows <-> history events, column for column as DTAS's TableEntityConverter.

Pure: no I/O. Entities are plain dicts ready for azure-data-tables (Python ``int`` -> Int32,
``bool`` -> Boolean, aware ``datetime`` -> DateTime, ``str`` -> String); readers accept what
azure-data-tables returns (``TablesEntityDatetime``, ``EntityProperty`` for Int64) as well.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import MessageDecodeError
from ..model import EVENT_CLASSES, EventType, HistoryEvent, OrchestrationStatus
from .netjson import (
    EVENT_MEMBERS,
    MIN_DATETIME,
    Kind,
    Member,
    dumps,
    to_utc,
)
from .netvalues import enum_value, value_from_tree, value_to_tree
from .partitioning import SENTINEL_ROW_KEY, escape_partition_key, history_row_key
from .table_columns import (
    column_bool,
    column_datetime,
    column_int,
    column_string,
)

__all__ = [
    "entity_to_history_event",
    "history_event_to_entity",
    "history_property_blob_name",
    "sentinel_entity",
]

_TIMESTAMP_COLUMN = "_Timestamp"  # "Timestamp" is reserved by Table storage
_INT32 = (-(2**31), 2**31 - 1)
_INT_TEXT = re.compile(r"^-?[0-9]+$")
_COMPLEX = frozenset({Kind.INSTANCE, Kind.PARENT, Kind.FAILURE, Kind.TRACE, Kind.TAGS, Kind.STATE})

def _column_json(entity: Mapping[str, Any], member: Member) -> Any:
    """Complex members are default-JSON strings; a missing column and ``"null"`` both mean None."""
    text = column_string(entity, member.net)
    if text is None or text == "null":
        return None
    try:
        return value_from_tree(member.kind, json.loads(text), f"column {member.net}")
    except ValueError as exc:  # json.JSONDecodeError; MessageDecodeError is a ValueError too
        if isinstance(exc, MessageDecodeError):
            raise
        raise MessageDecodeError(f"column {member.net}: malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise MessageDecodeError(f"column {member.net}: JSON nested too deeply") from exc


# --------------------------------------------------------------------------- history rows


def _column_name(member: Member) -> str:
    return _TIMESTAMP_COLUMN if member.net.lower() == "timestamp" else member.net


def _to_column(kind: Kind, value: Any) -> Any:
    """TableEntityConverter's mapping: enums as names, other non-primitives as default JSON."""
    if kind in _COMPLEX:
        return dumps(value_to_tree(kind, value, typed=False))  # None -> "null"
    if kind in (Kind.EVENT_TYPE, Kind.STATUS):
        return value.name
    if kind in (Kind.DATETIME, Kind.OPT_DATETIME):
        return None if value is None else to_utc(value)
    if kind in (Kind.INT, Kind.OPT_INT) and value is not None and not _INT32[0] <= value <= _INT32[1]:
        raise ValueError(f"{value} does not fit an Int32 column")
    return value


def history_event_to_entity(
    event: HistoryEvent, *, instance_id: str, sequence_number: int, execution_id: str
) -> dict[str, Any]:
    """The History row DTAS writes for ``event``; null scalars are left out (Tables drops them)."""
    entity: dict[str, Any] = {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": history_row_key(sequence_number),
    }
    for member in EVENT_MEMBERS[type(event)]:
        value = _to_column(member.kind, getattr(event, member.attr))
        if value is not None:
            entity[_column_name(member)] = value
    entity["ExecutionId"] = execution_id
    return entity


def _event_class(entity: Mapping[str, Any]) -> type[HistoryEvent]:
    name = column_string(entity, "EventType")
    if name is None:
        raise MessageDecodeError("history row has no EventType column")
    try:
        return EVENT_CLASSES[enum_value(EventType, name, "column EventType")]
    except MessageDecodeError as exc:
        raise MessageDecodeError(f"history row has unknown EventType {name!r}") from exc


def _from_column(entity: Mapping[str, Any], member: Member) -> Any:
    """Absent non-nullable columns take .NET's ``default(T)``, as TableEntityConverter does."""
    column = _column_name(member)
    kind = member.kind
    if kind in _COMPLEX:
        return _column_json(entity, member)
    if kind is Kind.STRING:
        return column_string(entity, column)
    if kind in (Kind.INT, Kind.OPT_INT):
        number = column_int(entity, column)
        return 0 if number is None and kind is Kind.INT else number
    if kind is Kind.BOOL:
        return bool(column_bool(entity, column))
    if kind in (Kind.DATETIME, Kind.OPT_DATETIME):
        when = column_datetime(entity, column)
        return MIN_DATETIME if when is None and kind is Kind.DATETIME else when
    if kind is Kind.STATUS:
        raw = column_string(entity, column)
        return OrchestrationStatus.Running if raw is None else enum_value(OrchestrationStatus, raw, column)
    raise AssertionError(f"unhandled member kind {kind}")


def entity_to_history_event(entity: Mapping[str, Any]) -> HistoryEvent:
    """The event a History row describes; unknown columns (ExecutionId, *BlobName, ...) are ignored."""
    cls = _event_class(entity)
    kwargs = {
        member.attr: _from_column(entity, member) for member in EVENT_MEMBERS[cls] if member.kind is not Kind.EVENT_TYPE
    }
    return cls(**kwargs)


def sentinel_entity(
    instance_id: str, execution_id: str, *, checkpoint_complete: bool, completed_at: datetime | None
) -> dict[str, Any]:
    """The ``sentinel`` row; intermediate batches leave the completion timestamp untouched."""
    entity: dict[str, Any] = {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": SENTINEL_ROW_KEY,
        "ExecutionId": execution_id,
        "IsCheckpointComplete": checkpoint_complete,
    }
    if completed_at is not None:
        entity["CheckpointCompletedTimestamp"] = to_utc(completed_at)
    return entity


def history_property_blob_name(
    partition_key: str, row_key: str, event_type_name: str, prop: str, rand: int | None = None
) -> str:
    """``{PK}/history-{RowKey}-{EventType}-{R:X8}-{Prop}.json.gz``; R avoids split-brain overwrites."""
    r = secrets.randbelow(2**31 - 1) if rand is None else rand  # .NET Random.Next(): [0, Int32.MaxValue)
    return f"{partition_key}/history-{row_key}-{event_type_name}-{r:08X}-{prop}.json.gz"
