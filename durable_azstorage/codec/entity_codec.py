"""Entity JSON exactly as DurableTask.Core / the Durable Functions extension write it.

Core serialises its entity messages with Newtonsoft (``TypeNameHandling.None``) over
``[DataContract]`` classes: member order is declaration order, ``EmitDefaultValue=false``
members are left out when default, ``DateTime`` is ISO with up to seven fraction digits and a
``Z`` (``DateTime.MinValue`` is written without the ``Z``, it has no kind). Readers match
member names case-insensitively and ignore unknown members, as Newtonsoft does.

One deliberate addition: the scheduler state also carries ``"exists": true`` (the DF
extension's legacy ``SchedulerState`` member). Core derives "exists" from ``state != null``
and ignores the member; the extension's client (``ReadEntityStateAsync``, the HTTP API)
needs it. Writing both keeps a hub readable by either (docs/entities.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import MessageDecodeError
from ..model.entities import (
    TICKS_PER_SECOND,
    EntityId,
    EntityStatus,
    MessageSorter,
    ReceiveBuffer,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    datetime_from_ticks,
    ticks_from_datetime,
)
from .netjson import Kind
from .netvalues import value_from_tree, value_to_tree

__all__ = [
    "decode_entity_status",
    "decode_release",
    "decode_request",
    "decode_response",
    "decode_scheduler_state",
    "encode_entity_status",
    "encode_release",
    "encode_request",
    "encode_response",
    "encode_scheduler_state",
    "format_ticks",
    "parse_ticks",
    "request_from_tree",
    "request_tree",
    "scheduled_time_from_event_name",
    "user_state_of",
]

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7})\d*)?(Z|[+-]\d{2}:?\d{2})?$")


# --------------------------------------------------------------------------- dates as ticks
def format_ticks(ticks: int) -> str:
    """A UTC ``DateTime`` as Newtonsoft writes it; ``MinValue`` (0) without a ``Z``."""
    if ticks == 0:
        return "0001-01-01T00:00:00"
    whole = datetime_from_ticks(ticks - ticks % TICKS_PER_SECOND)
    fraction = f"{ticks % TICKS_PER_SECOND:07d}".rstrip("0")
    dot = f".{fraction}" if fraction else ""
    date = f"{whole.year:04d}-{whole.month:02d}-{whole.day:02d}"  # not strftime: %Y does not pad years < 1000
    return f"{date}T{whole.hour:02d}:{whole.minute:02d}:{whole.second:02d}{dot}Z"


def parse_ticks(text: Any, path: str) -> int:
    """A .NET date string as ticks, keeping all seven fraction digits (offsets become UTC)."""
    if not isinstance(text, str):
        raise MessageDecodeError(f"{path}: expected a date string, got {type(text).__name__}")
    match = _DATE.match(text.strip())
    if match is None:
        raise MessageDecodeError(f"{path}: not a date: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = int((match.group(7) or "").ljust(7, "0"))
    try:
        whole = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise MessageDecodeError(f"{path}: not a date: {text!r}") from exc
    zone = match.group(8)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        whole -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if year == 1 and month == 1 and day == 1 and not (hour or minute or second or fraction):
        return 0
    return ticks_from_datetime(whole) + fraction


def scheduled_time_from_event_name(name: str | None) -> datetime | None:
    """The due time of an ``op@<date>`` event name, or None (Core ``IsDelayedEntityMessage``)."""
    if not name or len(name) < 3 or name[2] != "@":
        return None
    try:
        return datetime_from_ticks(parse_ticks(name[3:], "event name"))
    except MessageDecodeError:
        return None


# --------------------------------------------------------------------------- helpers
def _loads(text: str, what: str) -> dict[str, Any]:
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"{what}: malformed JSON: {exc}") from exc
    if not isinstance(tree, dict):
        raise MessageDecodeError(f"{what}: expected a JSON object")
    return tree


def _dumps(tree: Any) -> str:
    return json.dumps(tree, ensure_ascii=False, separators=(",", ":"))


def _lower(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in tree.items()}


def _opt_str(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MessageDecodeError(f"{path}: expected a string")


def _bool(value: Any, path: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise MessageDecodeError(f"{path}: expected true or false")


def _int(value: Any, path: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MessageDecodeError(f"{path}: expected an integer")


# --------------------------------------------------------------------------- request
_REQUEST_KNOWN = {
    "op", "signal", "input", "id", "parent", "parentexecution", "due", "timestamp", "predecessor",
    "lockset", "pos", "islockrequest", "createtrace",
}  # fmt: skip


def request_tree(m: RequestMessage) -> dict[str, Any]:
    """Member order and omissions of Core ``RequestMessage`` (a superset of the DF extension's)."""
    tree: dict[str, Any] = {"op": m.operation}
    if m.is_signal:
        tree["signal"] = True
    if m.input is not None:
        tree["input"] = m.input
    tree["id"] = m.id
    if m.parent_instance_id is not None:
        tree["parent"] = m.parent_instance_id
    if m.parent_execution_id is not None:
        tree["parentExecution"] = m.parent_execution_id
    if m.scheduled_time is not None:
        tree["due"] = format_ticks(ticks_from_datetime(m.scheduled_time))
    tree["Timestamp"] = format_ticks(m.timestamp)
    tree["Predecessor"] = format_ticks(m.predecessor)
    if m.lock_set is not None:
        tree["lockset"] = [{"name": e.name, "key": e.key} for e in m.lock_set]
    if m.position:
        tree["pos"] = m.position
    tree["IsLockRequest"] = m.is_lock_request
    if "parentTraceContext" in m.extra:
        tree["parentTraceContext"] = m.extra["parentTraceContext"]
    tree["createTrace"] = m.create_trace
    for key, value in m.extra.items():
        if key != "parentTraceContext":
            tree[key] = value
    return tree


def encode_request(m: RequestMessage) -> str:
    return _dumps(request_tree(m))


def request_from_tree(tree: Mapping[str, Any], path: str = "RequestMessage") -> RequestMessage:
    low = _lower(tree)
    raw_id = low.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise MessageDecodeError(f"{path}.id: required")
    due = low.get("due")
    lockset = low.get("lockset")
    locks: tuple[EntityId, ...] | None = None
    if lockset is not None:
        if not isinstance(lockset, list):
            raise MessageDecodeError(f"{path}.lockset: expected an array")
        locks = tuple(_entity_id_from_tree(item, f"{path}.lockset[]") for item in lockset)
    return RequestMessage(
        id=raw_id,
        operation=_opt_str(low.get("op"), f"{path}.op"),
        is_signal=_bool(low.get("signal"), f"{path}.signal"),
        input=_input_text(low.get("input")),
        parent_instance_id=_opt_str(low.get("parent"), f"{path}.parent"),
        parent_execution_id=_opt_str(low.get("parentexecution"), f"{path}.parentExecution"),
        scheduled_time=None if due is None else datetime_from_ticks(parse_ticks(due, f"{path}.due")),
        timestamp=0 if low.get("timestamp") is None else parse_ticks(low["timestamp"], f"{path}.Timestamp"),
        predecessor=0 if low.get("predecessor") is None else parse_ticks(low["predecessor"], f"{path}.Predecessor"),
        lock_set=locks,
        position=_int(low.get("pos"), f"{path}.pos"),
        create_trace=_bool(low.get("createtrace"), f"{path}.createTrace"),
        extra={k: v for k, v in tree.items() if str(k).lower() not in _REQUEST_KNOWN},
    )


def _input_text(value: Any) -> str | None:
    """``input`` is a JSON *string* in Core; an older writer's raw token is kept as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return _dumps(value)


def decode_request(text: str) -> RequestMessage:
    return request_from_tree(_loads(text, "RequestMessage"))


def _entity_id_from_tree(tree: Any, path: str) -> EntityId:
    if isinstance(tree, str):
        return EntityId.parse(tree)
    if not isinstance(tree, Mapping):
        raise MessageDecodeError(f"{path}: expected an entity id object")
    low = _lower(tree)
    name, key = low.get("name"), low.get("key")
    if not isinstance(name, str) or not isinstance(key, str):
        raise MessageDecodeError(f"{path}: entity id needs string name and key")
    return EntityId(name, key)


# --------------------------------------------------------------------------- response/release
def encode_response(m: ResponseMessage) -> str:
    tree: dict[str, Any] = {"result": m.result}
    if m.error_message is not None:
        tree["exceptionType"] = m.error_message
    if m.failure_details is not None:
        tree["failureDetails"] = value_to_tree(Kind.FAILURE, m.failure_details, typed=False)
    return _dumps(tree)


def decode_response(text: str) -> ResponseMessage:
    low = _lower(_loads(text, "ResponseMessage"))
    fd = low.get("failuredetails")
    return ResponseMessage(
        result=_input_text(low.get("result")),
        error_message=_opt_str(low.get("exceptiontype"), "ResponseMessage.exceptionType"),
        failure_details=None if fd is None else value_from_tree(Kind.FAILURE, fd, "ResponseMessage.failureDetails"),
    )


def encode_release(m: ReleaseMessage) -> str:
    return _dumps({"parent": m.parent_instance_id, "id": m.id})


def decode_release(text: str) -> ReleaseMessage:
    low = _lower(_loads(text, "ReleaseMessage"))
    return ReleaseMessage(
        parent_instance_id=_opt_str(low.get("parent"), "ReleaseMessage.parent"),
        id=_opt_str(low.get("id"), "ReleaseMessage.id"),
    )


# --------------------------------------------------------------------------- sorter
def _sorter_tree(s: MessageSorter) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    if s.last_sent_to_instance is not None:
        tree["LastSentToInstance"] = {k: format_ticks(v) for k, v in s.last_sent_to_instance.items()}
    if s.received_from_instance is not None:
        tree["ReceivedFromInstance"] = {k: _buffer_tree(b) for k, b in s.received_from_instance.items()}
    if s.receive_horizon:
        tree["ReceiveHorizon"] = format_ticks(s.receive_horizon)
    if s.send_horizon:
        tree["SendHorizon"] = format_ticks(s.send_horizon)
    return tree


def _buffer_tree(b: ReceiveBuffer) -> dict[str, Any]:
    tree: dict[str, Any] = {"Last": format_ticks(b.last)}
    if b.execution_id is not None:
        tree["ExecutionId"] = b.execution_id
    if b.buffered is not None:
        tree["Buffered"] = {format_ticks(t): request_tree(m) for t, m in sorted(b.buffered.items())}
    return tree


def _sorter_from_tree(tree: Any, path: str) -> MessageSorter:
    if tree is None:
        return MessageSorter()
    if not isinstance(tree, Mapping):
        raise MessageDecodeError(f"{path}: expected an object")
    low = _lower(tree)
    sent = low.get("lastsenttoinstance")
    received = low.get("receivedfrominstance")
    return MessageSorter(
        last_sent_to_instance=None
        if sent is None
        else {str(k): parse_ticks(v, f"{path}.LastSentToInstance") for k, v in _mapping(sent, path).items()},
        received_from_instance=None
        if received is None
        else {
            str(k): _buffer_from_tree(v, f"{path}.ReceivedFromInstance") for k, v in _mapping(received, path).items()
        },
        receive_horizon=0 if low.get("receivehorizon") is None else parse_ticks(low["receivehorizon"], path),
        send_horizon=0 if low.get("sendhorizon") is None else parse_ticks(low["sendhorizon"], path),
    )


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MessageDecodeError(f"{path}: expected an object")
    return value


def _buffer_from_tree(tree: Any, path: str) -> ReceiveBuffer:
    low = _lower(_mapping(tree, path))
    buffered = low.get("buffered")
    return ReceiveBuffer(
        last=0 if low.get("last") is None else parse_ticks(low["last"], f"{path}.Last"),
        execution_id=_opt_str(low.get("executionid"), f"{path}.ExecutionId"),
        buffered=None
        if buffered is None
        else {
            parse_ticks(k, f"{path}.Buffered"): request_from_tree(_mapping(v, path), f"{path}.Buffered")
            for k, v in _mapping(buffered, path).items()
        },
    )


# --------------------------------------------------------------------------- scheduler state
def encode_scheduler_state(s: SchedulerState) -> str:
    tree: dict[str, Any] = {}
    if s.entity_exists:
        tree["exists"] = True
        tree["state"] = s.entity_state if s.entity_state is not None else "null"
    if s.queue:
        tree["queue"] = [request_tree(m) for m in s.queue]
    if s.locked_by is not None:
        tree["lockedBy"] = s.locked_by
    if s.suspended:
        tree["suspended"] = True
    tree["sorter"] = _sorter_tree(s.sorter)
    return _dumps(tree)


def decode_scheduler_state(text: str | None) -> SchedulerState:
    """Either writer's form; ``None``/empty (a new or deleted entity) is the empty state."""
    if text is None or text == "" or text == "null":
        return SchedulerState()
    low = _lower(_loads(text, "SchedulerState"))
    state = _input_text(low.get("state"))
    exists = low.get("exists")
    entity_exists = _bool(exists, "SchedulerState.exists") if exists is not None else state is not None
    queue = low.get("queue")
    if queue is not None and not isinstance(queue, list):
        raise MessageDecodeError("SchedulerState.queue: expected an array")
    return SchedulerState(
        entity_exists=entity_exists,
        entity_state=state if entity_exists else None,
        queue=[request_from_tree(_mapping(q, "queue[]"), "SchedulerState.queue[]") for q in queue] or None
        if queue
        else None,
        locked_by=_opt_str(low.get("lockedby"), "SchedulerState.lockedBy"),
        suspended=_bool(low.get("suspended"), "SchedulerState.suspended"),
        sorter=_sorter_from_tree(low.get("sorter"), "SchedulerState.sorter"),
    )


def user_state_of(scheduler_state_text: str | None) -> str | None:
    """The entity's own state JSON, or None when it does not exist (``GetEntityState``)."""
    state = decode_scheduler_state(scheduler_state_text)
    return state.entity_state if state.entity_exists else None


# --------------------------------------------------------------------------- entity status
def encode_entity_status(s: EntityStatus) -> str:
    tree: dict[str, Any] = {}
    if s.entity_exists:
        tree["entityExists"] = True
    if s.queue_size:
        tree["queueSize"] = s.queue_size
    if s.locked_by is not None:
        tree["lockedBy"] = s.locked_by
    return _dumps(tree)


def decode_entity_status(text: str | None) -> EntityStatus | None:
    """The CustomStatus column of an entity row; None when absent or not an entity status."""
    if text is None or text in ("", "null"):
        return None
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(tree, dict):
        return None
    low = _lower(tree)
    try:
        return EntityStatus(
            entity_exists=_bool(low.get("entityexists"), "entityExists"),
            queue_size=_int(low.get("queuesize"), "queueSize"),
            locked_by=_opt_str(low.get("lockedby"), "lockedBy"),
        )
    except MessageDecodeError:
        return None
