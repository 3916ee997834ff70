"""The .NET serialisation conventions both codecs must agree on, kept in one place.

DTAS writes with Newtonsoft.Json and Azure.Data.Tables; getting a date format, a member
name or a ``$type`` spelling slightly wrong makes .NET workers reject or misread our data,
so every such convention lives here and nowhere else.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ..errors import MessageDecodeError, UnknownTypeNameError
from ..model import (
    EVENT_CLASSES,
    DistributedTraceContext,
    EventType,
    FailureDetails,
    HistoryEvent,
    OrchestrationExecutionContext,
    OrchestrationInstance,
    OrchestrationState,
    ParentInstance,
    TaskMessage,
)

__all__ = [
    "CORE_DICT_STRING_OBJECT",
    "CORE_DICT_STRING_STRING",
    "DICTIONARY",
    "EVENT_MEMBERS",
    "Kind",
    "MESSAGE_DATA_TYPE",
    "MIN_DATETIME",
    "Member",
    "NET_TYPE_NAMES",
    "dumps",
    "format_datetime",
    "format_datetime_offset",
    "parse_datetime",
    "parse_datetime_offset",
    "resolve_type_name",
    "to_pascal",
    "to_snake",
    "to_utc",
    "utf16_byte_count",
    "utf8_bytes",
]

MIN_DATETIME = datetime(1, 1, 1, tzinfo=timezone.utc)
_MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

# --------------------------------------------------------------------------- dates

_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$")
_MS_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{2})?(\d{2})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, because DTAS only ever stores UTC instants."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _fraction(value: datetime) -> str:
    """Newtonsoft's ``.FFFFFFF``: seven digits with trailing zeros (and the dot) dropped."""
    digits = f"{value.microsecond:06d}0".rstrip("0")
    return f".{digits}" if digits else ""


def _seconds(value: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss``; not strftime, whose ``%Y`` does not zero-pad years < 1000 on glibc."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"


def format_datetime(value: datetime) -> str:
    """A UTC ``DateTime`` as Newtonsoft writes it with RoundtripKind (always a ``Z``).

    Writing ``Z`` matters: an explicit offset is read back by .NET as a Local-kind value.
    """
    utc = to_utc(value)
    return f"{_seconds(utc)}{_fraction(utc)}Z"


def format_datetime_offset(value: datetime) -> str:
    """A ``DateTimeOffset`` as Newtonsoft writes it: the value's own offset, ``+00:00`` for UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    offset = aware.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{_seconds(aware)}{_fraction(aware)}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_aware(text: str) -> datetime:
    """Any .NET date spelling as an aware datetime; no offset means UTC (DTAS writes UTC only)."""
    ms = _MS_DATE_RE.match(text)
    if ms:
        return _EPOCH + timedelta(milliseconds=int(ms.group(1)))
    m = _ISO_RE.match(text.strip())
    if not m:
        raise MessageDecodeError(f"not a .NET date/time: {text!r}")
    year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
    second = int(m.group(6) or 0)
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))  # truncate ticks, never round past 9999
    tz = _parse_offset(m.group(8))
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError as exc:
        raise MessageDecodeError(f"invalid date/time {text!r}: {exc}") from exc


def _parse_offset(spec: str | None) -> timezone:
    if spec is None or spec in ("Z", "z"):
        return timezone.utc
    digits = spec[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        return timezone(-delta if spec[0] == "-" else delta)
    except ValueError as exc:
        raise MessageDecodeError(f"invalid UTC offset {spec!r}") from exc


def parse_datetime(text: str) -> datetime:
    """A .NET ``DateTime`` string as aware UTC, clamped to the .NET range."""
    value = _parse_aware(text)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        return MIN_DATETIME if value.year == 1 else _MAX_DATETIME


def parse_datetime_offset(text: str) -> datetime:
    """A .NET ``DateTimeOffset`` string as an aware datetime that keeps its offset."""
    return _parse_aware(text)


# --------------------------------------------------------------------------- names

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def to_pascal(attr: str) -> str:
    """``task_scheduled_id`` -> ``TaskScheduledId``: the .NET member name of a model attribute."""
    return "".join(part[:1].upper() + part[1:] for part in attr.split("_"))


def to_snake(member: str) -> str:
    """``TaskScheduledId`` -> ``task_scheduled_id``: the inverse of :func:`to_pascal`."""
    return _CAMEL_BOUNDARY.sub("_", member).lower()


class Kind(enum.Enum):
    """How one data member is represented, which differs between queue JSON and table columns."""

    STRING = "string"
    INT = "int"
    OPT_INT = "int?"
    BOOL = "bool"
    DATETIME = "DateTime"
    OPT_DATETIME = "DateTime?"
    EVENT_TYPE = "EventType"
    STATUS = "OrchestrationStatus"
    INSTANCE = "OrchestrationInstance"
    PARENT = "ParentInstance"
    FAILURE = "FailureDetails"
    TRACE = "DistributedTraceContext"
    TAGS = "IDictionary<string,string>"
    STATE = "OrchestrationState"


class Member(NamedTuple):
    net: str
    attr: str
    kind: Kind


def _m(net: str, kind: Kind = Kind.STRING) -> Member:
    return Member(net, to_snake(net), kind)


_EVENT_TYPE = _m("EventType", Kind.EVENT_TYPE)
_BASE = (_m("EventId", Kind.INT), _m("IsPlayed", Kind.BOOL), _m("Timestamp", Kind.DATETIME))
_TRACE = _m("ParentTraceContext", Kind.TRACE)
_TAGS = _m("Tags", Kind.TAGS)
_FAILURE = _m("FailureDetails", Kind.FAILURE)
_SCHEDULED_ID = _m("TaskScheduledId", Kind.INT)
_FIRE_AT = _m("FireAt", Kind.DATETIME)


def _event(*members: Member, fields: tuple[Member, ...] = ()) -> tuple[Member, ...]:
    """Newtonsoft order: declared fields, then properties (``EventType`` first), then the base ones."""
    return (*fields, _EVENT_TYPE, *members, *_BASE)


_COMPLETED = _event(_m("OrchestrationStatus", Kind.STATUS), _m("Result"), _FAILURE)
_FAILED = _event(_SCHEDULED_ID, _m("Reason"), _m("Details"), _FAILURE)
_TASK_DONE = _event(_SCHEDULED_ID, _m("Result"))
_REASON_ONLY = _event(_m("Reason"))

_MEMBERS_BY_TYPE: dict[EventType, tuple[Member, ...]] = {
    EventType.ExecutionStarted: _event(
        _m("ParentInstance", Kind.PARENT),
        _m("Name"),
        _m("Version"),
        _m("Input"),
        _TAGS,
        _m("Correlation"),
        _TRACE,
        _m("ScheduledStartTime", Kind.OPT_DATETIME),
        _m("Generation", Kind.OPT_INT),
        _m("GenerateNewTrace", Kind.BOOL),
        fields=(_m("OrchestrationInstance", Kind.INSTANCE),),
    ),
    EventType.ExecutionCompleted: _COMPLETED,
    EventType.ExecutionFailed: _event(),
    EventType.ExecutionTerminated: _event(_m("Input")),
    EventType.TaskScheduled: _event(_m("Name"), _m("Version"), _m("Input"), _TRACE, _TAGS),
    EventType.TaskCompleted: _TASK_DONE,
    EventType.TaskFailed: _FAILED,
    EventType.SubOrchestrationInstanceCreated: _event(
        _m("Name"), _m("Version"), _m("InstanceId"), _m("Input"), _m("ClientSpanId"), _TAGS
    ),
    EventType.SubOrchestrationInstanceCompleted: _TASK_DONE,
    EventType.SubOrchestrationInstanceFailed: _FAILED,
    EventType.TimerCreated: _event(_FIRE_AT),
    EventType.TimerFired: _event(_m("TimerId", Kind.INT), _FIRE_AT),
    EventType.OrchestratorStarted: _event(),
    EventType.OrchestratorCompleted: _event(),
    EventType.EventSent: _event(_m("InstanceId"), _m("Name"), _m("Input")),
    EventType.EventRaised: _event(_m("Name"), _m("Input"), _TRACE),
    EventType.ContinueAsNew: _COMPLETED,
    EventType.GenericEvent: _event(fields=(_m("Data"),)),
    EventType.HistoryState: _event(_m("State", Kind.STATE)),
    EventType.ExecutionSuspended: _REASON_ONLY,
    EventType.ExecutionResumed: _REASON_ONLY,
    EventType.ExecutionRewound: _event(_m("Reason"), _m("ParentExecutionId"), _m("InstanceId"), _TRACE),
}

EVENT_MEMBERS: dict[type[HistoryEvent], tuple[Member, ...]] = {
    EVENT_CLASSES[et]: members for et, members in _MEMBERS_BY_TYPE.items()
}
"""Every serialised member of each event class, in the order .NET writes them."""

# --------------------------------------------------------------------------- $type names

MESSAGE_DATA_TYPE = "DurableTask.AzureStorage.MessageData"
_SYS = "System.Private.CoreLib"
CORE_DICT_STRING_STRING = f"System.Collections.Generic.Dictionary`2[[System.String, {_SYS}],[System.String, {_SYS}]]"
CORE_DICT_STRING_OBJECT = f"System.Collections.Generic.Dictionary`2[[System.String, {_SYS}],[System.Object, {_SYS}]]"
DICTIONARY = "<dictionary>"
"""What :func:`resolve_type_name` returns for any accepted spelling of a string-keyed dictionary."""

NET_TYPE_NAMES: dict[type, str] = {
    TaskMessage: "DurableTask.Core.TaskMessage",
    OrchestrationInstance: "DurableTask.Core.OrchestrationInstance",
    ParentInstance: "DurableTask.Core.ParentInstance",
    OrchestrationExecutionContext: "DurableTask.Core.OrchestrationExecutionContext",
    FailureDetails: "DurableTask.Core.FailureDetails",
    DistributedTraceContext: "DurableTask.Core.Tracing.DistributedTraceContext",
    OrchestrationState: "DurableTask.Core.OrchestrationState",
    **{cls: f"DurableTask.Core.History.{cls.__name__}" for cls in EVENT_CLASSES.values()},
}
"""The ``$type`` DTAS writes for each model class (``Type.FullName``, no assembly part)."""

_KNOWN_NAMES = frozenset({MESSAGE_DATA_TYPE, *NET_TYPE_NAMES.values()})
_CORLIB = r", (?:mscorlib|System\.Private\.CoreLib)(?:, [^\[\]]*)?"
_DICT_RE = re.compile(
    rf"^System\.Collections\.Generic\.Dictionary`2\[\[System\.String{_CORLIB}\],\[System\.(?:String|Object){_CORLIB}\]\]$"
)
_DATA_CONTRACT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):#([A-Za-z_][A-Za-z0-9_.]*)$")


def _strip_assembly(name: str) -> str:
    """``T, Assembly`` -> ``T``; commas inside generic-argument brackets are not the separator."""
    depth = 0
    for i, ch in enumerate(name):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            return name[:i].strip()
    return name.strip()


def resolve_type_name(raw: str) -> str:
    """Map any accepted ``$type``/``__type`` spelling to the canonical name, or refuse it.

    This is an explicit whitelist, never a type lookup: a queue message is data from a
    shared storage account, and instantiating whatever it names would be an injection.
    """
    dc = _DATA_CONTRACT_RE.match(raw)
    name = f"{dc.group(2)}.{dc.group(1)}" if dc else _strip_assembly(raw)
    if name in _KNOWN_NAMES:
        return name
    if name.startswith("DurableTask.") and not name.startswith(("DurableTask.Core.", "DurableTask.AzureStorage.")):
        v1 = "DurableTask.Core." + name[len("DurableTask.") :]  # DTFx v1: "DurableTask.X, DurableTask"
        if v1 in _KNOWN_NAMES:
            return v1
    if _DICT_RE.match(name):
        return DICTIONARY
    raise UnknownTypeNameError(raw)


# --------------------------------------------------------------------------- text helpers

_NEWTONSOFT_EXTRA_ESCAPES = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(tree: Any) -> str:
    """Compact JSON escaped like Newtonsoft's default, so byte counts (and thresholds) match."""
    text = json.dumps(tree, ensure_ascii=False, separators=(",", ":"))
    for ch, escaped in _NEWTONSOFT_EXTRA_ESCAPES.items():
        if ch in text:
            text = text.replace(ch, escaped)
    return text


def utf8_bytes(text: str) -> bytes:
    """UTF-8 as .NET's encoder makes it: a lone surrogate becomes U+FFFD instead of raising."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def utf16_byte_count(text: str) -> int:
    """``Encoding.Unicode.GetByteCount``: the size Azure Tables charges for a string."""
    if text.isascii():  # two bytes a character; no need to encode the whole text
        return 2 * len(text)
    return len(text.encode("utf-16-le", "surrogatepass"))
