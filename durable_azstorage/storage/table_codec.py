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

from azure.data.tables import EntityProperty

from ..errors import MessageDecodeError
from ..model import EVENT_CLASSES, EventType, HistoryEvent, OrchestrationStatus
from .netjson import (
    EVENT_MEMBERS,
    MIN_DATETIME,
    Kind,
    Member,
    dumps,
    parse_datetime,
    to_utc,
    utf16_byte_count,
)
from .netvalues import enum_value, value_from_tree, value_to_tree
from .partitioning import SENTINEL_ROW_KEY, escape_partition_key, history_row_key

__all__ = [
    "BLOB_NAME_SUFFIX",
    "LARGE_PROPERTY_CANDIDATES",
    "MAX_TABLE_PROPERTY_UTF16_BYTES",
    "blob_name_property",
    "column_datetime",
    "column_int",
    "column_string",
    "entity_to_history_event",
    "estimate_entity_size",
    "history_event_to_entity",
    "history_property_blob_name",
    "oversized_properties",
    "sentinel_entity",
]

LARGE_PROPERTY_CANDIDATES: tuple[str, ...] = (
    "Name",
    "Input",
    "Result",
    "Output",
    "Reason",
    "Details",
    "Correlation",
    "FailureDetails",
    "Tags",
)
"""DTAS ``VariableSizeEntityProperties``: the only columns ever moved to blobs."""

MAX_TABLE_PROPERTY_UTF16_BYTES = 60 * 1024
BLOB_NAME_SUFFIX = "BlobName"
"""A documented breaking-change constant in DTAS (``GetBlobPropertyName``)."""

_TIMESTAMP_COLUMN = "_Timestamp"  # "Timestamp" is reserved by Table storage
_INT32 = (-(2**31), 2**31 - 1)
_INT_TEXT = re.compile(r"^-?[0-9]+$")
_COMPLEX = frozenset({Kind.INSTANCE, Kind.PARENT, Kind.FAILURE, Kind.TRACE, Kind.TAGS, Kind.STATE})

# --------------------------------------------------------------------------- column readers


def _unwrap(value: Any) -> Any:
    """azure-data-tables wraps Int64 (and caller-typed values) in EntityProperty."""
    return value.value if isinstance(value, EntityProperty) else value


def column_string(entity: Mapping[str, Any], name: str) -> str | None:
    value = _unwrap(entity.get(name))
    if value is None or isinstance(value, str):
        return value
    raise MessageDecodeError(f"column {name}: expected a string, got {type(value).__name__}")


def column_int(entity: Mapping[str, Any], name: str) -> int | None:
    value = _unwrap(entity.get(name))
    if value is None:
        return None
    if isinstance(value, str) and _INT_TEXT.match(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MessageDecodeError(f"column {name}: expected an integer, got {value!r}")


def column_datetime(entity: Mapping[str, Any], name: str) -> datetime | None:
    """Aware UTC; ``TablesEntityDatetime`` is narrowed to a plain datetime."""
    value = _unwrap(entity.get(name))
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except MessageDecodeError as exc:
            raise MessageDecodeError(f"column {name}: {exc}") from exc
    if isinstance(value, datetime):
        utc = to_utc(value)
        return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=utc.tzinfo)
    raise MessageDecodeError(f"column {name}: expected a DateTime, got {type(value).__name__}")


def _column_bool(entity: Mapping[str, Any], name: str) -> bool | None:
    value = _unwrap(entity.get(name))
    if value is None or isinstance(value, bool):
        return value
    raise MessageDecodeError(f"column {name}: expected a Boolean, got {value!r}")


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
        return bool(_column_bool(entity, column))
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


# --------------------------------------------------------------------------- large properties


def _candidate_strings(entity: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name in LARGE_PROPERTY_CANDIDATES
        if isinstance(value := _unwrap(entity.get(name)), str) and value
    ]


def oversized_properties(entity: Mapping[str, Any]) -> list[str]:
    """Columns whose UTF-16 size exceeds DTAS's 60 KiB limit and must move to blobs."""
    return [
        name for name, value in _candidate_strings(entity) if utf16_byte_count(value) > MAX_TABLE_PROPERTY_UTF16_BYTES
    ]


def blob_name_property(prop: str) -> str:
    """``Input`` -> ``InputBlobName``: where the blob name of an offloaded column is stored."""
    return prop + BLOB_NAME_SUFFIX


def history_property_blob_name(
    partition_key: str, row_key: str, event_type_name: str, prop: str, rand: int | None = None
) -> str:
    """``{PK}/history-{RowKey}-{EventType}-{R:X8}-{Prop}.json.gz``; R avoids split-brain overwrites."""
    r = secrets.randbelow(2**31 - 1) if rand is None else rand  # .NET Random.Next(): [0, Int32.MaxValue)
    return f"{partition_key}/history-{row_key}-{event_type_name}-{r:08X}-{prop}.json.gz"


def estimate_entity_size(entity: Mapping[str, Any]) -> int:
    """DTAS's batch-size estimate: 1 KiB per entity plus the variable-size string columns."""
    return 1024 + sum(utf16_byte_count(value) for _, value in _candidate_strings(entity))
