"""Durable entities as DurableTask.Core models them: ids, messages, scheduler state, sorter.

An entity is an orchestration instance whose id is ``@{name}@{key}``. Operations reach it as
``EventRaised`` events named ``op`` (or ``op@<due>`` when scheduled, ``release`` to unlock)
carrying a *request message*; replies go back to the caller as ``EventRaised`` named after the
request id. Between batches everything the entity knows (user state, queued requests, lock
owner, message-sorter bookkeeping) lives in the *scheduler state*, persisted as the input of
the entity's ExecutionStarted event (Core ``TaskEntityDispatcher``).

Times that take part in message ordering are kept as .NET ticks (100 ns since 0001-01-01):
the sorter bumps timestamps by one tick and a microsecond ``datetime`` would merge two
distinct .NET timestamps into one and drop a message as a duplicate.

Pure: no JSON (see :mod:`durable_azstorage.codec.entity_codec`), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import InvalidInstanceIdError
from .values import FailureDetails

__all__ = [
    "CONTINUE_EVENT_NAME",
    "LOCK_ACQUISITION_COMPLETED",
    "RELEASE_EVENT_NAME",
    "REQUEST_EVENT_NAME",
    "EntityId",
    "EntityStatus",
    "MessageSorter",
    "ReceiveBuffer",
    "ReleaseMessage",
    "RequestMessage",
    "ResponseMessage",
    "SchedulerState",
    "datetime_from_ticks",
    "is_entity_instance",
    "is_release_event",
    "is_request_event",
    "scheduled_request_event_name",
    "ticks_from_datetime",
]

REQUEST_EVENT_NAME = "op"
RELEASE_EVENT_NAME = "release"
CONTINUE_EVENT_NAME = "continue"
LOCK_ACQUISITION_COMPLETED = "Lock Acquisition Completed"  # Core ResponseMessage.LockAcquisitionCompletion

TICKS_PER_SECOND = 10_000_000
_TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MIN_INTERVAL_BETWEEN_COLLECTIONS = 10 * TICKS_PER_SECOND  # Core MessageSorter: 10 s


def ticks_from_datetime(value: datetime) -> int:
    """.NET ``DateTime.Ticks`` of a UTC instant (naive values are taken as UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    delta = aware - _UNIX_EPOCH
    return _TICKS_AT_UNIX_EPOCH + (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def datetime_from_ticks(ticks: int) -> datetime:
    """The UTC instant of ``ticks`` (sub-microsecond digits are truncated)."""
    return _UNIX_EPOCH + timedelta(microseconds=(ticks - _TICKS_AT_UNIX_EPOCH) // 10)


def is_entity_instance(instance_id: str | None) -> bool:
    """Core ``Entities.IsEntityInstance``: the id starts with ``@``."""
    return bool(instance_id) and instance_id is not None and instance_id[0] == "@"


def is_request_event(name: str | None) -> bool:
    """Core ``IsRequestMessage``: ``op`` and ``op@<due>`` (a prefix test, as in .NET)."""
    return bool(name) and name is not None and name.startswith(REQUEST_EVENT_NAME)


def is_release_event(name: str | None) -> bool:
    return name == RELEASE_EVENT_NAME


def scheduled_request_event_name(due_ticks: int) -> str:
    """``op@{due:o}``: the round-trip format, always seven fraction digits and ``Z``."""
    due = datetime_from_ticks(due_ticks)
    return f"op@{due.strftime('%Y-%m-%dT%H:%M:%S')}.{due_ticks % TICKS_PER_SECOND:07d}Z"


@dataclass(frozen=True, order=True)
class EntityId:
    """``@{name}@{key}``; ordering is (name, key), the lock-acquisition order of Core."""

    name: str
    key: str

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInstanceIdError("Invalid entity id: entity name must not be a null or empty string.")
        if "@" in self.name:
            raise InvalidInstanceIdError(f"Invalid entity name {self.name!r}: it must not contain '@'.")

    def __str__(self) -> str:
        return f"@{self.name}@{self.key}"

    @property
    def instance_id(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, instance_id: str) -> EntityId:
        """Core ``EntityId.FromString``: name up to the second ``@``, the rest is the key."""
        pos = instance_id.find("@", 1) if instance_id else -1
        if pos <= 0 or instance_id[0] != "@":
            raise InvalidInstanceIdError(f"Instance ID {instance_id!r} is not a valid entity ID.")
        return cls(instance_id[1:pos], instance_id[pos + 1 :])

    @classmethod
    def of(cls, name: str, key: str) -> EntityId:
        """An id as clients and SDKs spell it: the name lower-cased (DF extension, durabletask SDK)."""
        return cls(name.lower(), key)


@dataclass(kw_only=True)
class RequestMessage:
    """Core ``RequestMessage``: one operation call/signal, or a lock request (``lock_set``)."""

    id: str
    operation: str | None = None
    is_signal: bool = False
    input: str | None = None
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    scheduled_time: datetime | None = None
    timestamp: int = 0  # ticks; 0 is DateTime.MinValue
    predecessor: int = 0
    lock_set: tuple[EntityId, ...] | None = None
    position: int = 0
    create_trace: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # members kept verbatim (trace context, requestTime)

    @property
    def is_lock_request(self) -> bool:
        return self.lock_set is not None


@dataclass(kw_only=True)
class ResponseMessage:
    """Core ``ResponseMessage``: the result JSON, or an error (``exceptionType``/failure details)."""

    result: str | None = None
    error_message: str | None = None
    failure_details: FailureDetails | None = None

    @property
    def is_error(self) -> bool:
        return self.error_message is not None or self.failure_details is not None


@dataclass(kw_only=True)
class ReleaseMessage:
    """Core ``ReleaseMessage``: the lock owner gives the entity back."""

    parent_instance_id: str | None = None
    id: str | None = None


@dataclass(kw_only=True)
class ReceiveBuffer:
    last: int = 0
    execution_id: str | None = None
    buffered: dict[int, RequestMessage] | None = None


@dataclass(kw_only=True)
class MessageSorter:
    """Per-sender ordering and de-duplication of entity requests (Core ``MessageSorter``).

    Senders label each request with a strictly increasing timestamp per destination and the
    timestamp of the previous one (``predecessor``); the receiver delivers a request only after
    its predecessor and drops one it has already delivered. Entries older than the reorder
    window are forgotten so the state stays small.
    """

    last_sent_to_instance: dict[str, int] | None = None
    received_from_instance: dict[str, ReceiveBuffer] | None = None
    receive_horizon: int = 0
    send_horizon: int = 0

    def label_outgoing(self, message: RequestMessage, destination: str, now: int, window: int) -> None:
        if window == 0:
            return
        timestamp = now
        if self.send_horizon + window + _MIN_INTERVAL_BETWEEN_COLLECTIONS < now:
            self.send_horizon = now - window
            if self.last_sent_to_instance is not None:
                self.last_sent_to_instance = {
                    k: v for k, v in self.last_sent_to_instance.items() if v >= self.send_horizon
                }
        if self.last_sent_to_instance is None:
            self.last_sent_to_instance = {}
        else:
            last = self._last_sent(destination)
            if last is not None:
                message.predecessor = last
                timestamp = max(timestamp, last + 1)
        message.timestamp = timestamp
        self._set_last_sent(destination, timestamp)

    def _last_sent(self, destination: str) -> int | None:
        assert self.last_sent_to_instance is not None
        folded = destination.casefold()  # the .NET dictionary is OrdinalIgnoreCase
        return next((v for k, v in self.last_sent_to_instance.items() if k.casefold() == folded), None)

    def _set_last_sent(self, destination: str, value: int) -> None:
        assert self.last_sent_to_instance is not None
        folded = destination.casefold()
        key = next((k for k in self.last_sent_to_instance if k.casefold() == folded), destination)
        self.last_sent_to_instance[key] = value

    def receive_in_order(self, message: RequestMessage, window: int) -> Iterator[RequestMessage]:
        """Requests now deliverable because of ``message`` (possibly none, possibly several)."""
        if window == 0 or message.parent_instance_id is None or message.position > 0:
            yield message
            return
        if self.receive_horizon + window + _MIN_INTERVAL_BETWEEN_COLLECTIONS < message.timestamp:
            yield from self._collect(message.timestamp - window)
        if message.timestamp < self.receive_horizon:
            yield message
            return
        buffer = self._buffer_for(message)
        if buffer.execution_id != message.parent_execution_id:
            # A new execution of the sender: flush what the old one left behind.
            for _, old in sorted((buffer.buffered or {}).items()):
                yield old
            buffer.buffered = None
            buffer.last = 0
            buffer.execution_id = message.parent_execution_id
        if message.timestamp <= buffer.last:
            return  # duplicate: already delivered
        if message.predecessor > buffer.last and message.predecessor >= self.receive_horizon:
            if buffer.buffered is None:
                buffer.buffered = {}
            buffer.buffered[message.timestamp] = message
            return
        yield message
        buffer.last = message.timestamp if message.timestamp >= self.receive_horizon else 0
        yield from self._drain(buffer)

    def _buffer_for(self, message: RequestMessage) -> ReceiveBuffer:
        assert message.parent_instance_id is not None
        if self.received_from_instance is None:
            self.received_from_instance = {}
        folded = message.parent_instance_id.casefold()
        for key, buffer in self.received_from_instance.items():
            if key.casefold() == folded:
                return buffer
        buffer = ReceiveBuffer(execution_id=message.parent_execution_id)
        self.received_from_instance[message.parent_instance_id] = buffer
        return buffer

    def _collect(self, horizon: int) -> Iterator[RequestMessage]:
        self.receive_horizon = horizon
        if self.received_from_instance is None:
            return
        for key, buffer in list(self.received_from_instance.items()):
            if buffer.last < horizon:
                buffer.last = 0
            yield from self._drain(buffer)
            if buffer.last == 0 and not buffer.buffered:
                del self.received_from_instance[key]
        if not self.received_from_instance:
            self.received_from_instance = None

    def _drain(self, buffer: ReceiveBuffer) -> Iterator[RequestMessage]:
        while buffer.buffered:
            first_key = min(buffer.buffered)
            nxt = buffer.buffered[first_key]
            if not (nxt.predecessor <= buffer.last or nxt.predecessor < self.receive_horizon):
                return
            del buffer.buffered[first_key]
            buffer.last = nxt.timestamp if nxt.timestamp >= self.receive_horizon else 0
            yield nxt

    @property
    def buffered_count(self) -> int:
        return sum(len(b.buffered or {}) for b in (self.received_from_instance or {}).values())


@dataclass(kw_only=True)
class SchedulerState:
    """What an entity persists between batches (Core and DF-extension ``SchedulerState``)."""

    entity_exists: bool = False
    entity_state: str | None = None
    queue: list[RequestMessage] | None = None
    locked_by: str | None = None
    suspended: bool = False
    sorter: MessageSorter = field(default_factory=MessageSorter)

    @property
    def is_empty(self) -> bool:
        return not self.entity_exists and not self.queue and self.locked_by is None

    def enqueue(self, message: RequestMessage) -> None:
        if self.queue is None:
            self.queue = []
        self.queue.append(message)

    def put_back(self, messages: list[RequestMessage]) -> None:
        """Requeue ``messages`` *in front of* what is queued (lock-holder requests go first)."""
        self.queue = [*messages, *(self.queue or [])] or None

    def promote_lock_holder(self) -> bool:
        """Move the lock holder's queued requests to the front (keeping their order).

        A holder's request can sit behind others only through a race: the lock grant was sent,
        the checkpoint that recorded it failed, and the holder's next request arrived before the
        replayed grant committed. Left there, the entity waits for the holder and the holder for
        the entity. Returns whether the holder has requests queued.
        """
        if self.locked_by is None or not self.queue:
            return False
        holder = [m for m in self.queue if m.parent_instance_id == self.locked_by]
        if holder and self.queue[0] is not holder[0]:
            self.queue = [*holder, *(m for m in self.queue if m.parent_instance_id != self.locked_by)]
        return bool(holder)

    def may_dequeue(self) -> bool:
        return bool(self.queue) and (
            self.locked_by is None or self.locked_by == self.queue[0].parent_instance_id  # type: ignore[index]
        )

    def dequeue(self) -> RequestMessage:
        if not self.queue:
            raise IndexError("the entity queue is empty")
        message = self.queue.pop(0)
        if not self.queue:
            self.queue = None
        return message

    def status(self) -> EntityStatus:
        return EntityStatus(
            entity_exists=self.entity_exists, queue_size=len(self.queue or []), locked_by=self.locked_by
        )


@dataclass(frozen=True, kw_only=True)
class EntityStatus:
    """The entity's custom status column (Core ``EntityStatus``): cheap metadata for queries."""

    entity_exists: bool = False
    queue_size: int = 0
    locked_by: str | None = None
