"""Queue message bodies (DTAS ``MessageData``) <-> model objects, byte-compatible with .NET.

Pure: no I/O. The writer produces exactly what DTAS 2.x writes (``MessageManager``; docs/storage-layout.md);
the reader also accepts what older or differently configured .NET stacks wrote (base64
bodies, assembly-qualified and v1 ``$type`` names, DataContract ``__type``).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MessageDecodeError
from ..model import (
    EVENT_CLASSES,
    EventType,
    HistoryEvent,
    OrchestrationExecutionContext,
    OrchestrationInstance,
    TaskMessage,
)
from .netjson import (
    EVENT_MEMBERS,
    MESSAGE_DATA_TYPE,
    NET_TYPE_NAMES,
    Kind,
    dumps,
    resolve_type_name,
    utf8_bytes,
)
from .netvalues import enum_value, members_of, value_from_tree, value_to_tree

__all__ = [
    "MAX_QUEUE_PAYLOAD_BYTES",
    "TYPE_NAMES",
    "MessageData",
    "decode_history_event",
    "decode_message_data",
    "decode_task_message",
    "encode_message_data",
    "gunzip_text",
    "gzip_text",
    "history_event_from_tree",
    "history_event_to_tree",
    "large_message_blob_name",
    "large_message_wrapper",
    "message_data_from_tree",
    "needs_blob",
    "prepare_queue_message",
    "resolve_type_name",
    "task_message_from_tree",
]

MAX_QUEUE_PAYLOAD_BYTES = 45 * 1024
"""DTAS ``MaxStorageQueuePayloadSizeInBytes``: above this UTF-8 size a message goes to a blob."""

_T = TypeVar("_T")
_EMPTY_GUID = uuid.UUID(int=0)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass
class MessageData:
    """The queue envelope around one TaskMessage (AS/MessageData.cs)."""

    activity_id: uuid.UUID
    task_message: TaskMessage | None
    compressed_blob_name: str | None = None
    sequence_number: int = 0
    episode: int | None = None
    sender: OrchestrationInstance | None = None
    serializable_trace_context: str | None = None


TYPE_NAMES: dict[type, str] = {MessageData: MESSAGE_DATA_TYPE, **NET_TYPE_NAMES}
"""The ``$type`` written for each class; reading goes through :func:`resolve_type_name`."""

_EVENT_BY_TYPE_NAME: dict[str, type[HistoryEvent]] = {NET_TYPE_NAMES[cls]: cls for cls in EVENT_CLASSES.values()}

# --------------------------------------------------------------------------- encode


def history_event_to_tree(event: HistoryEvent) -> dict[str, Any]:
    """An event as DTAS's queue serializer writes it: ``$type`` first, members in .NET order."""
    cls = type(event)
    tree: dict[str, Any] = {"$type": TYPE_NAMES[cls]}
    for member in EVENT_MEMBERS[cls]:
        tree[member.net] = value_to_tree(member.kind, getattr(event, member.attr), typed=True)
    return tree


def _task_message_tree(message: TaskMessage) -> dict[str, Any]:
    context = message.orchestration_execution_context
    return {
        "$type": TYPE_NAMES[TaskMessage],
        "Event": history_event_to_tree(message.event),
        "SequenceNumber": message.sequence_number,
        "OrchestrationInstance": value_to_tree(Kind.INSTANCE, message.orchestration_instance, typed=True),
        "OrchestrationExecutionContext": None
        if context is None
        else {
            "$type": TYPE_NAMES[OrchestrationExecutionContext],
            "OrchestrationTags": value_to_tree(Kind.TAGS, context.orchestration_tags, typed=True),
        },
    }


def _message_data_tree(md: MessageData) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "$type": MESSAGE_DATA_TYPE,
        "ActivityId": str(md.activity_id),
        "TaskMessage": None if md.task_message is None else _task_message_tree(md.task_message),
        "CompressedBlobName": md.compressed_blob_name,
        "SequenceNumber": md.sequence_number,
    }
    if md.episode is not None:  # [DataMember(EmitDefaultValue = false)]
        tree["Episode"] = md.episode
    if md.sender is not None:  # TypeNameHandling.None: the one object without $type
        tree["Sender"] = {"InstanceId": md.sender.instance_id, "ExecutionId": md.sender.execution_id}
    tree["SerializableTraceContext"] = md.serializable_trace_context
    return tree


def encode_message_data(md: MessageData) -> str:
    """The exact queue message text DTAS would send (before any large-message offload)."""
    return dumps(_message_data_tree(md))


# --------------------------------------------------------------------------- decode


def _event_class(tree: Any, path: str) -> type[HistoryEvent]:
    """The event class named by ``$type``/``__type``, or by ``EventType`` when neither is present."""
    if not isinstance(tree, dict):
        raise MessageDecodeError(f"{path}: expected a JSON object, got {type(tree).__name__}")
    raw = tree.get("$type", tree.get("__type"))
    if isinstance(raw, str):
        name = resolve_type_name(raw)
        if name not in _EVENT_BY_TYPE_NAME:
            raise MessageDecodeError(f"{path}: $type {raw!r} is not a history event")
        return _EVENT_BY_TYPE_NAME[name]
    members = members_of(tree, None, path)
    if "eventtype" not in members:
        raise MessageDecodeError(f"{path}: history event has neither $type nor EventType")
    return EVENT_CLASSES[enum_value(EventType, members["eventtype"], f"{path}.EventType")]


def history_event_from_tree(tree: Any, path: str = "Event") -> HistoryEvent:
    """A parsed JSON event; members that are absent keep the model's defaults."""
    cls = _event_class(tree, path)
    members = members_of(tree, None, path)
    kwargs: dict[str, Any] = {}
    for member in EVENT_MEMBERS[cls]:
        key = member.net.lower()
        if key not in members:
            continue
        value = value_from_tree(member.kind, members[key], f"{path}.{member.net}")
        if member.kind is not Kind.EVENT_TYPE:  # computed in .NET too; the $type decides
            kwargs[member.attr] = value
    return cls(**kwargs)


def _execution_context(tree: Any, path: str) -> OrchestrationExecutionContext | None:
    if tree is None:
        return None
    members = members_of(tree, TYPE_NAMES[OrchestrationExecutionContext], path)
    tags = value_from_tree(Kind.TAGS, members.get("orchestrationtags"), f"{path}.OrchestrationTags")
    return OrchestrationExecutionContext(orchestration_tags=tags)


_TASK_MESSAGE_MEMBERS = frozenset({"event", "sequencenumber", "orchestrationinstance", "orchestrationexecutioncontext"})


def task_message_from_tree(tree: Any, path: str = "TaskMessage") -> TaskMessage:
    members = members_of(tree, TYPE_NAMES[TaskMessage], path)
    if members.get("event") is None:
        raise MessageDecodeError(f"{path}.Event: missing")
    instance = value_from_tree(Kind.INSTANCE, members.get("orchestrationinstance"), f"{path}.OrchestrationInstance")
    if instance is None:
        raise MessageDecodeError(f"{path}.OrchestrationInstance: missing")
    extra = {k: v for k, v in tree.items() if k.lower() not in _TASK_MESSAGE_MEMBERS and not k.startswith(("$", "__"))}
    return TaskMessage(
        event=history_event_from_tree(members["event"], f"{path}.Event"),
        orchestration_instance=instance,
        sequence_number=_int64(members.get("sequencenumber", 0), f"{path}.SequenceNumber"),
        orchestration_execution_context=_execution_context(
            members.get("orchestrationexecutioncontext"), f"{path}.OrchestrationExecutionContext"
        ),
        extra=extra,
    )


def _int64(tree: Any, path: str) -> int:
    if isinstance(tree, int) and not isinstance(tree, bool) and _INT64[0] <= tree <= _INT64[1]:
        return tree
    raise MessageDecodeError(f"{path}: expected a 64-bit integer, got {tree!r}")


def _guid(tree: Any, path: str) -> uuid.UUID:
    if tree is None:
        return _EMPTY_GUID
    if isinstance(tree, str):
        try:
            return uuid.UUID(tree)
        except ValueError:
            pass
    raise MessageDecodeError(f"{path}: expected a GUID, got {tree!r}")


def message_data_from_tree(tree: Any) -> MessageData:
    members = members_of(tree, MESSAGE_DATA_TYPE, "MessageData")
    task_message = members.get("taskmessage")
    episode = members.get("episode")
    return MessageData(
        activity_id=_guid(members.get("activityid"), "MessageData.ActivityId"),
        task_message=None if task_message is None else task_message_from_tree(task_message),
        compressed_blob_name=value_from_tree(Kind.STRING, members.get("compressedblobname"), "CompressedBlobName"),
        sequence_number=_int64(members.get("sequencenumber", 0), "MessageData.SequenceNumber"),
        episode=None if episode is None else value_from_tree(Kind.INT, episode, "MessageData.Episode"),
        sender=value_from_tree(Kind.INSTANCE, members.get("sender"), "MessageData.Sender"),
        serializable_trace_context=value_from_tree(
            Kind.STRING, members.get("serializabletracecontext"), "MessageData.SerializableTraceContext"
        ),
    )


def _text_of(body: str | bytes) -> str:
    """The JSON text of a queue body: raw UTF-8 JSON, or base64 of it (DTAS 1.x / Base64 clients)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MessageDecodeError(f"queue message is not UTF-8: {exc}") from exc
    text = body.lstrip("\ufeff").strip()
    if text.startswith("{"):
        return text
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
        decoded = raw.decode("utf-8-sig").strip()
    except (binascii.Error, ValueError) as exc:
        raise MessageDecodeError("queue message is neither JSON nor base64-encoded JSON") from exc
    if not decoded.startswith("{"):
        raise MessageDecodeError("base64 queue message does not contain a JSON object")
    return decoded


def _load(body: str | bytes) -> Any:
    text = _text_of(body)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"malformed JSON in queue message: {exc}") from exc


def _guarded(decode: Callable[[Any], _T], tree: Any) -> _T:
    """Absurdly nested input (e.g. InnerFailure chains) must fail as bad data, not crash the worker."""
    try:
        return decode(tree)
    except RecursionError as exc:
        raise MessageDecodeError("queue message is nested too deeply") from exc


def decode_message_data(body: str | bytes) -> MessageData:
    """Any MessageData body a DTAS version may have written; raises MessageDecodeError otherwise."""
    return _guarded(message_data_from_tree, _load(body))


def decode_task_message(body: str | bytes) -> TaskMessage:
    """A bare TaskMessage JSON (as DurableTask.Core serialises it outside the envelope)."""
    return _guarded(task_message_from_tree, _load(body))


def decode_history_event(body: str | bytes) -> HistoryEvent:
    """A bare typed HistoryEvent JSON."""
    return _guarded(history_event_from_tree, _load(body))


# --------------------------------------------------------------------------- large messages


def needs_blob(text: str) -> bool:
    """True when DTAS would move this serialised message to the large-message container."""
    return len(utf8_bytes(text)) > MAX_QUEUE_PAYLOAD_BYTES


def large_message_blob_name(instance_id: str, activity_id: uuid.UUID, event_type: EventType) -> str:
    """``{raw instanceId}/message-{activityId:N}-{EventType}.json.gz`` (unescaped id: a DTAS quirk)."""
    return f"{instance_id}/message-{activity_id.hex}-{event_type.name}.json.gz"


def large_message_wrapper(blob_name: str) -> str:
    """The queue text that points at a blob: a default MessageData with only the blob name set."""
    return encode_message_data(MessageData(activity_id=_EMPTY_GUID, task_message=None, compressed_blob_name=blob_name))


def gzip_text(text: str) -> bytes:
    """Gzip of the UTF-8 text; mtime 0 so identical payloads give identical blobs."""
    return gzip.compress(utf8_bytes(text), mtime=0)


def gunzip_text(data: bytes) -> str:
    """Inverse of :func:`gzip_text`; undecodable bytes become U+FFFD, as .NET's reader does."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise MessageDecodeError(f"blob is not valid gzip: {exc}") from exc
    return raw.decode("utf-8-sig", errors="replace")


def prepare_queue_message(md: MessageData) -> tuple[str, tuple[str, bytes] | None]:
    """The queue text to send plus, when too large, the ``(blob name, gzip bytes)`` to upload first.

    Mirrors ``SerializeMessageDataAsync``: the blob holds the full message serialised
    before ``CompressedBlobName`` is set, and the queue gets only the wrapper.
    """
    text = encode_message_data(md)
    if not needs_blob(text):
        return text, None
    if md.task_message is None:
        raise ValueError("a message without a TaskMessage cannot be offloaded to a blob")
    tm = md.task_message
    blob_name = large_message_blob_name(tm.orchestration_instance.instance_id, md.activity_id, tm.event.event_type)
    return large_message_wrapper(blob_name), (blob_name, gzip_text(text))
