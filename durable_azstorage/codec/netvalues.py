"""Model values <-> the JSON trees Newtonsoft makes of them, typed or not.

The queue writes these objects with ``$type`` (TypeNameHandling.Objects) and the History
table stores the very same objects as plain default JSON strings; one converter with a
``typed`` switch keeps the two spellings from drifting apart. Decoding accepts both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..errors import MessageDecodeError
from ..model import (
    DistributedTraceContext,
    EventType,
    FailureDetails,
    OrchestrationInstance,
    OrchestrationState,
    OrchestrationStatus,
    ParentInstance,
)
from .netjson import (
    CORE_DICT_STRING_OBJECT,
    CORE_DICT_STRING_STRING,
    DICTIONARY,
    MIN_DATETIME,
    NET_TYPE_NAMES,
    Kind,
    format_datetime,
    format_datetime_offset,
    parse_datetime,
    parse_datetime_offset,
    resolve_type_name,
)

__all__ = ["enum_value", "members_of", "value_from_tree", "value_to_tree"]

_INT_TEXT = re.compile(r"^\s*[+-]?[0-9]+\s*$")
_META_KEYS = frozenset({"$type", "__type", "$id"})
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# --------------------------------------------------------------------------- encode


def _obj(cls: type, typed: bool, **members: Any) -> dict[str, Any]:
    """A .NET object: ``$type`` first (Newtonsoft only honours a leading one), then members."""
    head = {"$type": NET_TYPE_NAMES[cls]} if typed else {}
    return {**head, **members}


def _instance_tree(v: OrchestrationInstance | None, typed: bool) -> dict[str, Any] | None:
    if v is None:
        return None
    return _obj(OrchestrationInstance, typed, InstanceId=v.instance_id, ExecutionId=v.execution_id)


def _parent_tree(v: ParentInstance | None, typed: bool) -> dict[str, Any] | None:
    if v is None:
        return None
    return _obj(
        ParentInstance,
        typed,
        Name=v.name,
        OrchestrationInstance=_instance_tree(v.orchestration_instance, typed),
        TaskScheduleId=v.task_schedule_id,
        Version=v.version,
    )


def _property_tree(value: Any, typed: bool) -> Any:
    """``IDictionary<string, object>`` values: nested dictionaries get a ``$type`` too."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, (list, tuple)):
        return [_property_tree(item, typed) for item in value]
    if isinstance(value, Mapping):
        head = {"$type": CORE_DICT_STRING_OBJECT} if typed else {}
        return {**head, **{str(k): _property_tree(v, typed) for k, v in value.items()}}
    raise ValueError(f"FailureDetails property value of type {type(value).__name__} cannot be serialised")


def _failure_tree(v: FailureDetails | None, typed: bool) -> dict[str, Any] | None:
    if v is None:
        return None
    return _obj(
        FailureDetails,
        typed,
        ErrorType=v.error_type,
        ErrorMessage=v.error_message,
        StackTrace=v.stack_trace,
        InnerFailure=_failure_tree(v.inner_failure, typed),
        IsNonRetriable=v.is_non_retriable,
        Properties=_property_tree(v.properties, typed),
    )


def _trace_tree(v: DistributedTraceContext | None, typed: bool) -> dict[str, Any] | None:
    if v is None:
        return None
    start = v.activity_start_time
    return _obj(
        DistributedTraceContext,
        typed,
        TraceParent=v.trace_parent,
        TraceState=v.trace_state,
        Id=v.id,
        SpanId=v.span_id,
        ActivityStartTime=None if start is None else format_datetime_offset(start),
    )


def _tags_tree(v: Mapping[str, str] | None, typed: bool) -> dict[str, Any] | None:
    if v is None:
        return None
    head = {"$type": CORE_DICT_STRING_STRING} if typed else {}
    return {**head, **v}


def _state_tree(v: OrchestrationState | None, typed: bool) -> dict[str, Any] | None:
    """OrchestrationState's fields in declaration order; non-nullable dates default to MinValue."""
    if v is None:
        return None

    def date(d: datetime | None) -> str:
        return format_datetime(d or MIN_DATETIME)

    scheduled = v.scheduled_start_time
    return _obj(
        OrchestrationState,
        typed,
        CompletedTime=date(v.completed_time),
        CompressedSize=v.compressed_size,
        CreatedTime=date(v.created_time),
        Input=v.input,
        LastUpdatedTime=date(v.last_updated_time),
        Name=v.name,
        OrchestrationInstance=_instance_tree(v.orchestration_instance, typed),
        OrchestrationStatus=-1 if v.runtime_status is None else int(v.runtime_status),
        Output=v.output,
        ParentInstance=_parent_tree(v.parent_instance, typed),
        Size=v.size,
        Status=v.custom_status,
        Tags=_tags_tree(v.tags, typed),
        Version=v.version,
        Generation=v.generation,
        ScheduledStartTime=None if scheduled is None else format_datetime(scheduled),
        FailureDetails=_failure_tree(v.failure_details, typed),
    )


def value_to_tree(kind: Kind, value: Any, *, typed: bool) -> Any:
    """One member value as Newtonsoft writes it: enums as ints, dates ISO, nulls kept."""
    if kind in (Kind.DATETIME, Kind.OPT_DATETIME):
        return None if value is None else format_datetime(value)
    if kind in (Kind.EVENT_TYPE, Kind.STATUS):
        return int(value)
    encoder = _COMPLEX_ENCODERS.get(kind)
    if encoder is not None:
        return encoder(value, typed)
    return value


_COMPLEX_ENCODERS: dict[Kind, Callable[[Any, bool], Any]] = {
    Kind.INSTANCE: _instance_tree,
    Kind.PARENT: _parent_tree,
    Kind.FAILURE: _failure_tree,
    Kind.TRACE: _trace_tree,
    Kind.TAGS: _tags_tree,
    Kind.STATE: _state_tree,
}

# --------------------------------------------------------------------------- decode


def members_of(tree: Any, expected: str | None, path: str) -> dict[str, Any]:
    """The members of a JSON object keyed by lower-case name (Newtonsoft matches case-insensitively).

    A ``$type``/``__type``, when present, must be whitelisted and, if ``expected`` is given,
    name that type; DataContract JSON (golden 03a) leaves it out on inner objects.
    """
    if not isinstance(tree, Mapping):
        raise MessageDecodeError(f"{path}: expected a JSON object, got {type(tree).__name__}")
    if "$ref" in tree:
        raise MessageDecodeError(f"{path}: $ref object references are not supported")
    raw_type = tree.get("$type", tree.get("__type"))
    if raw_type is not None:
        if not isinstance(raw_type, str):
            raise MessageDecodeError(f"{path}: $type must be a string")
        actual = resolve_type_name(raw_type)
        if expected is not None and actual != expected:
            raise MessageDecodeError(f"{path}: expected $type {expected!r}, got {raw_type!r}")
    return {str(k).lower(): v for k, v in tree.items() if k not in _META_KEYS}


def _string(tree: Any, path: str) -> str | None:
    if tree is None or isinstance(tree, str):
        return tree
    raise MessageDecodeError(f"{path}: expected a string or null, got {type(tree).__name__}")


def _integer(tree: Any, path: str, bounds: tuple[int, int] = _INT32) -> int:
    value: Any = tree
    if (isinstance(tree, str) and _INT_TEXT.match(tree)) or (isinstance(tree, float) and tree.is_integer()):
        value = int(tree)
    if not isinstance(value, int) or isinstance(value, bool) or not bounds[0] <= value <= bounds[1]:
        raise MessageDecodeError(f"{path}: expected an integer, got {tree!r}")
    return value


def _boolean(tree: Any, path: str) -> bool:
    if isinstance(tree, bool):
        return tree
    raise MessageDecodeError(f"{path}: expected true/false, got {tree!r}")


def _date(tree: Any, path: str, *, offset: bool = False) -> datetime | None:
    if tree is None:
        return None
    if not isinstance(tree, str):
        raise MessageDecodeError(f"{path}: expected a date string, got {type(tree).__name__}")
    try:
        return parse_datetime_offset(tree) if offset else parse_datetime(tree)
    except MessageDecodeError as exc:
        raise MessageDecodeError(f"{path}: {exc}") from exc


def _required_date(tree: Any, path: str) -> datetime:
    value = _date(tree, path)
    if value is None:
        raise MessageDecodeError(f"{path}: date must not be null")
    return value


def enum_value(enum_cls: type[EventType] | type[OrchestrationStatus], tree: Any, path: str) -> Any:
    """An enum given as its integer (Newtonsoft's default) or its name (StringEnumConverter)."""
    if isinstance(tree, str) and tree in enum_cls.__members__:
        return enum_cls[tree]
    number = _integer(tree, path)
    try:
        return enum_cls(number)
    except ValueError as exc:
        raise MessageDecodeError(f"{path}: {number} is not a valid {enum_cls.__name__}") from exc


def _instance(tree: Any, path: str) -> OrchestrationInstance | None:
    if tree is None:
        return None
    m = members_of(tree, NET_TYPE_NAMES[OrchestrationInstance], path)
    instance_id = _string(m.get("instanceid"), f"{path}.InstanceId")
    if instance_id is None:
        raise MessageDecodeError(f"{path}.InstanceId: missing")
    return OrchestrationInstance(instance_id=instance_id, execution_id=_string(m.get("executionid"), path))


def _parent(tree: Any, path: str) -> ParentInstance | None:
    if tree is None:
        return None
    m = members_of(tree, NET_TYPE_NAMES[ParentInstance], path)
    return ParentInstance(
        name=_string(m.get("name"), f"{path}.Name"),
        orchestration_instance=_instance(m.get("orchestrationinstance"), f"{path}.OrchestrationInstance"),
        task_schedule_id=_integer(m.get("taskscheduleid", 0), f"{path}.TaskScheduleId"),
        version=_string(m.get("version"), f"{path}.Version"),
    )


def _property_value(tree: Any, path: str) -> Any:
    if isinstance(tree, list):
        return [_property_value(item, f"{path}[]") for item in tree]
    if isinstance(tree, Mapping):
        members_of(tree, DICTIONARY, path)  # validates shape and $type only; keys keep their case
        return {k: _property_value(v, f"{path}.{k}") for k, v in tree.items() if k not in _META_KEYS}
    return tree


def _failure(tree: Any, path: str) -> FailureDetails | None:
    if tree is None:
        return None
    m = members_of(tree, NET_TYPE_NAMES[FailureDetails], path)
    props = m.get("properties")
    if props is not None and not isinstance(props, Mapping):
        raise MessageDecodeError(f"{path}.Properties: expected an object")
    return FailureDetails(
        error_type=_string(m.get("errortype"), f"{path}.ErrorType") or "",
        error_message=_string(m.get("errormessage"), f"{path}.ErrorMessage") or "",
        stack_trace=_string(m.get("stacktrace"), f"{path}.StackTrace"),
        inner_failure=_failure(m.get("innerfailure"), f"{path}.InnerFailure"),
        is_non_retriable=_boolean(m.get("isnonretriable", False), f"{path}.IsNonRetriable"),
        properties=_property_value(props, f"{path}.Properties"),
    )


def _trace(tree: Any, path: str) -> DistributedTraceContext | None:
    if tree is None:
        return None
    m = members_of(tree, NET_TYPE_NAMES[DistributedTraceContext], path)
    return DistributedTraceContext(
        trace_parent=_string(m.get("traceparent"), f"{path}.TraceParent"),
        trace_state=_string(m.get("tracestate"), f"{path}.TraceState"),
        id=_string(m.get("id"), f"{path}.Id"),
        span_id=_string(m.get("spanid"), f"{path}.SpanId"),
        activity_start_time=_date(m.get("activitystarttime"), f"{path}.ActivityStartTime", offset=True),
    )


def _tags(tree: Any, path: str) -> dict[str, str] | None:
    if tree is None:
        return None
    members_of(tree, DICTIONARY, path)  # validates shape and $type only; keys keep their case
    tags: dict[str, str] = {}
    for key, value in tree.items():
        if key in _META_KEYS:
            continue
        if not isinstance(value, str):
            raise MessageDecodeError(f"{path}.{key}: tag values must be strings, got {value!r}")
        tags[key] = value
    return tags


def _status_or_none(number: int) -> OrchestrationStatus | None:
    """DTAS reads an unknown status as ``(OrchestrationStatus)(-1)``; the model says None."""
    try:
        return OrchestrationStatus(number)
    except ValueError:
        return None


def _state(tree: Any, path: str) -> OrchestrationState | None:
    if tree is None:
        return None
    m = members_of(tree, NET_TYPE_NAMES[OrchestrationState], path)
    instance = _instance(m.get("orchestrationinstance"), f"{path}.OrchestrationInstance")
    if instance is None:
        raise MessageDecodeError(f"{path}.OrchestrationInstance: missing")

    def date(name: str) -> datetime | None:
        value = _date(m.get(name.lower()), f"{path}.{name}")
        return None if value == MIN_DATETIME else value

    status_number = _integer(m.get("orchestrationstatus", -1), f"{path}.OrchestrationStatus")
    generation = m.get("generation")
    return OrchestrationState(
        orchestration_instance=instance,
        name=_string(m.get("name"), f"{path}.Name"),
        version=_string(m.get("version"), f"{path}.Version"),
        runtime_status=_status_or_none(status_number),
        input=_string(m.get("input"), f"{path}.Input"),
        output=_string(m.get("output"), f"{path}.Output"),
        custom_status=_string(m.get("status"), f"{path}.Status"),
        created_time=date("CreatedTime"),
        last_updated_time=date("LastUpdatedTime"),
        completed_time=date("CompletedTime"),
        scheduled_start_time=_date(m.get("scheduledstarttime"), f"{path}.ScheduledStartTime"),
        generation=None if generation is None else _integer(generation, f"{path}.Generation"),
        tags=_tags(m.get("tags"), f"{path}.Tags"),
        parent_instance=_parent(m.get("parentinstance"), f"{path}.ParentInstance"),
        failure_details=_failure(m.get("failuredetails"), f"{path}.FailureDetails"),
        size=_integer(m.get("size", 0), f"{path}.Size", _INT64),
        compressed_size=_integer(m.get("compressedsize", 0), f"{path}.CompressedSize", _INT64),
    )


def value_from_tree(kind: Kind, tree: Any, path: str) -> Any:
    """The model value of one member; raises MessageDecodeError naming ``path`` on bad input."""
    if kind is Kind.STRING:
        return _string(tree, path)
    if kind is Kind.INT:
        return _integer(tree, path)
    if kind is Kind.OPT_INT:
        return None if tree is None else _integer(tree, path)
    if kind is Kind.BOOL:
        return _boolean(tree, path)
    if kind is Kind.DATETIME:
        return _required_date(tree, path)
    if kind is Kind.OPT_DATETIME:
        return _date(tree, path)
    if kind is Kind.EVENT_TYPE:
        return enum_value(EventType, tree, path)
    if kind is Kind.STATUS:
        return enum_value(OrchestrationStatus, tree, path)
    return _COMPLEX_DECODERS[kind](tree, path)


_COMPLEX_DECODERS: dict[Kind, Callable[[Any, str], Any]] = {
    Kind.INSTANCE: _instance,
    Kind.PARENT: _parent,
    Kind.FAILURE: _failure,
    Kind.TRACE: _trace,
    Kind.TAGS: _tags,
    Kind.STATE: _state,
}
