"""Control and work-item queues: DTAS ``MessageData`` over Azure Storage queues.

Messages are raw UTF-8 JSON with an infinite time-to-live; larger than 45 KiB they travel as
a gzip blob plus a small wrapper. Receiving never raises because of one bad message: it is
returned with its decode error so the worker can quarantine it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from ..codec.queue_codec import MessageData, decode_message_data, prepare_queue_message
from ..errors import MessageDecodeError
from ..model import EventRaisedEvent, ExecutionStartedEvent, TimerFiredEvent, utc_now
from .blobs import LargePayloadStore
from .faults import is_storage_trouble

__all__ = [
    "MAX_VISIBILITY_DELAY",
    "BackoffPoller",
    "LocalSink",
    "QueueMessage",
    "TaskHubQueue",
    "abandon_delay",
    "next_sequence_number",
    "visibility_delay_for",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_VISIBILITY_DELAY = timedelta(days=7) - timedelta(seconds=1)
"""Azure rejects longer visibility delays; longer timers are chained by the replay state."""
_MAX_ABANDON_SECONDS = 600
_sequence = itertools.count(1)
_DOWNLOAD_RETRY_DELAY = timedelta(seconds=1)
_LOCAL_TIMER_WAKE_LIMIT = 3600
"""Delays up to an hour also schedule an in-process wake-up when they are due."""


def next_sequence_number() -> int:
    """Process-wide, monotonic ``MessageData.SequenceNumber`` (the batch tie-breaker)."""
    return next(_sequence)


def abandon_delay(dequeue_count: int) -> timedelta:
    """DTAS back-off for a message put back: ``min(2^dequeueCount, 600)`` seconds."""
    if dequeue_count > 30:
        return timedelta(seconds=_MAX_ABANDON_SECONDS)
    return timedelta(seconds=min(2**dequeue_count, _MAX_ABANDON_SECONDS))


def visibility_delay_for(md: MessageData, now: datetime) -> timedelta:
    """How long a message stays invisible after sending (DTAS ``GetVisibilityDelay``)."""
    event = md.task_message.event if md.task_message else None
    due: datetime | None = None
    if isinstance(event, TimerFiredEvent):
        due = event.fire_at
    elif isinstance(event, ExecutionStartedEvent):
        due = event.scheduled_start_time
    elif isinstance(event, EventRaisedEvent) and md.task_message is not None:
        due = _delayed_entity_signal(md.task_message.orchestration_instance.instance_id, event.name)
    if due is None:
        return timedelta(0)
    return max(timedelta(0), due - now)


def _delayed_entity_signal(instance_id: str, name: str | None) -> datetime | None:
    """``@`` entity messages named ``op@<date>`` carry their due time (Core ``IsDelayedEntityMessage``)."""
    if not instance_id.startswith("@") or not name or len(name) < 3 or name[2] != "@":
        return None
    try:
        due = datetime.fromisoformat(name[3:].replace("Z", "+00:00"))
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=timezone.utc)


@dataclass
class QueueMessage:
    """One received message: decoded data or the reason it could not be decoded."""

    queue_name: str
    message_id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime | None
    next_visible_on: datetime | None
    body: str
    data: MessageData | None = None
    error: MessageDecodeError | None = None
    download_error: BaseException | None = None
    """Set when the large-message blob could not be fetched (storage trouble); not returned."""


class _WakeUps:
    """Process-wide wake-up callbacks per queue URL, each run on the event loop it came from.

    A client and a worker in one process (a Functions-style host, tests, the demo) open separate
    SDK clients; keyed by URL, a start sent by the client still ends the worker's polling wait at
    once. The sync client runs its own loop in a thread, hence ``call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[tuple[asyncio.AbstractEventLoop | None, Callable[[], None]]]] = {}

    def add(self, key: str, callback: Callable[[], None]) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._callbacks.setdefault(key, []).append((loop, callback))

    def remove(self, key: str, callback: Callable[[], None]) -> None:
        with self._lock:
            entries = self._callbacks.get(key, [])
            entries[:] = [(loop, cb) for loop, cb in entries if cb != callback]
            if not entries:
                self._callbacks.pop(key, None)

    def notify(self, key: str) -> None:
        with self._lock:
            entries = list(self._callbacks.get(key, ()))
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, callback in entries:
            if loop is None or loop is current:
                callback()
            elif not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(callback)
                except RuntimeError:  # closed between the check and the call
                    pass


_wake_ups = _WakeUps()


class _Sinks:
    """Process-wide local sinks per queue URL, each usable only on the event loop that set it.

    A client in the worker's process (the benchmark, a Functions-style host, tests) opens its
    own storage objects; keyed by URL, its start message is handed to the worker's pump like
    the worker's own messages (put held, delivered in memory, no Get Messages call).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[asyncio.AbstractEventLoop | None, LocalSink]] = {}

    def set(self, key: str, sink: LocalSink | None, previous: LocalSink | None) -> None:
        with self._lock:
            if sink is not None:
                try:
                    loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                self._entries[key] = (loop, sink)
            elif previous is not None and (entry := self._entries.get(key)) is not None and entry[1] is previous:
                del self._entries[key]

    def get(self, key: str) -> LocalSink | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return entry[1] if entry[0] is loop else None


_sinks = _Sinks()


class LocalSink(Protocol):
    """An in-process consumer of a queue that can take a message without a receive call.

    ``send`` puts such a message with ``hold`` as its initial visibility timeout, so it is
    stored durably but invisible, exactly as if this process had just received it; the sink
    then owns it through the returned pop receipt. If the process dies, the message becomes
    visible after ``hold`` and any worker processes it — the same guarantee as a dequeued
    message, one ``Get Messages`` call cheaper and without the polling delay.
    """

    @property
    def hold(self) -> timedelta: ...

    def accepts(self) -> bool:
        """Whether a message sent now would be taken (room, still running)."""
        ...

    def deliver(self, message: QueueMessage) -> bool:
        """Take the held message; False hands it back to the queue (made visible at once)."""
        ...


class TaskHubQueue:
    """One queue of a task hub; ``send`` wakes in-process pollers of the same queue."""

    def __init__(self, client: QueueClient, payloads: LargePayloadStore) -> None:
        self._client = client
        self._payloads = payloads
        self.name: str = client.queue_name
        self._key = str(getattr(client, "url", self.name)).split("?", 1)[0].rstrip("/").lower()
        self._sink: LocalSink | None = None

    def set_local_sink(self, sink: LocalSink | None) -> None:
        """Route messages sent by this process to ``sink`` (None: every message goes via polling)."""
        previous, self._sink = self._sink, sink
        _sinks.set(self._key, sink, previous)

    def _local_sink(self) -> LocalSink | None:
        return self._sink or _sinks.get(self._key)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever this process sends to this queue (any client object)."""
        _wake_ups.add(self._key, callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        _wake_ups.remove(self._key, callback)

    async def create(self) -> None:
        try:
            await self._client.create_queue()
        except ResourceExistsError:
            pass

    async def delete_queue(self) -> None:
        try:
            await self._client.delete_queue()
        except ResourceNotFoundError:
            pass

    async def approximate_count(self) -> int:
        properties = await self._client.get_queue_properties()
        return int(properties.approximate_message_count or 0)

    async def oldest_inserted_on(self) -> datetime | None:
        """When the first visible message was enqueued (a peek: never changes visibility)."""
        peeked = await self._client.peek_messages(max_messages=1)
        return peeked[0].inserted_on if peeked else None

    async def send(
        self, md: MessageData, *, visibility_delay: timedelta | None = None, local: bool = True
    ) -> str | None:
        """Enqueue; returns the large-message blob name when the payload was offloaded.

        ``local=False`` never hands the message to an in-process consumer (it is put visible
        and wakes the pollers): a client's start, whose Instances row is written after the
        message, must not reach a worker before that row exists.
        """
        delay = visibility_delay if visibility_delay is not None else visibility_delay_for(md, utc_now())
        if delay > MAX_VISIBILITY_DELAY:
            raise ValueError(f"visibility delay {delay} exceeds the queue maximum of 7 days")
        text, blob = prepare_queue_message(md)
        if blob is not None:
            await self._payloads.upload_text_bytes(blob[0], blob[1])
        sink = self._local_sink() if local else None
        if sink is not None and delay <= timedelta(0) and sink.accepts():
            await self._send_held(sink, md, text)
        else:
            seconds = max(0, int(delay.total_seconds() + 0.999)) if delay > timedelta(0) else None
            await self._client.send_message(text, visibility_timeout=seconds, time_to_live=-1)
            self._notify()
            if seconds and seconds <= _LOCAL_TIMER_WAKE_LIMIT:
                # A timer (or scheduled start) this process may consume: poll right when it is due
                # instead of up to max_queue_polling_interval later.
                asyncio.get_running_loop().call_later(seconds + 0.05, self._notify)
        return None if blob is None else blob[0]

    async def send_then(
        self, md: MessageData, step: Callable[[str | None], Awaitable[_T]]
    ) -> tuple[str | None, _T]:
        """Send ``md``, then run ``step(blob_name)``; an in-process consumer gets it only after.

        A client's start: the Instances row (``step``) must exist before a worker screens the
        start, and DTAS writes it after the message. With a consumer of this queue in this
        process the message is put held (stored, invisible, owned here), the row is written,
        and the message is handed over in memory — no ``Get Messages``, no polling delay.
        Otherwise it is put visible first and ``step`` runs after, as :meth:`send` with
        ``local=False`` does. Should ``step`` fail, a held message is made visible at once.
        """
        delay = visibility_delay_for(md, utc_now())
        sink = self._local_sink()
        if sink is None or delay > timedelta(0) or not sink.accepts():
            blob_name = await self.send(md, local=False)
            return blob_name, await step(blob_name)
        text, blob = prepare_queue_message(md)
        if blob is not None:
            await self._payloads.upload_text_bytes(blob[0], blob[1])
        blob_name = None if blob is None else blob[0]
        held = await self._put_held(sink, md, text)
        try:
            result = await step(blob_name)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._update_visibility(held, timedelta(0))
                self._notify()
            raise
        await self._hand_over(sink, held)
        return blob_name, result

    async def _send_held(self, sink: LocalSink, md: MessageData, text: str) -> None:
        await self._hand_over(sink, await self._put_held(sink, md, text))

    async def _put_held(self, sink: LocalSink, md: MessageData, text: str) -> QueueMessage:
        hold = max(1, int(sink.hold.total_seconds()))
        sent = await self._client.send_message(text, visibility_timeout=hold, time_to_live=-1)
        return QueueMessage(
            queue_name=self.name,
            message_id=str(sent.id),
            pop_receipt=str(sent.pop_receipt),
            dequeue_count=0,
            inserted_on=sent.inserted_on,
            next_visible_on=sent.next_visible_on,
            body=text,
            data=md,
        )

    async def _hand_over(self, sink: LocalSink, message: QueueMessage) -> None:
        if self._local_sink() is sink and sink.deliver(message):
            return
        # The sink stopped while we were sending: hand the message to whoever polls next.
        await self._update_visibility(message, timedelta(0))
        self._notify()

    def _notify(self) -> None:
        _wake_ups.notify(self._key)

    async def receive(self, max_messages: int, visibility_timeout: timedelta) -> list[QueueMessage]:
        """One ``Get Messages`` call; sorted by insertion time, then sender sequence number."""
        received = []
        pager = self._client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=int(visibility_timeout.total_seconds()),
        )
        # The SDK's pager asks for a second page whenever the first held fewer than
        # max_messages (an extra, usually empty, Get Messages): take one page only.
        async for page in pager.by_page():
            async for raw in page:
                received.append(await self._decode(raw))
            break
        received = await self._put_back_undownloaded(received)
        received.sort(
            key=lambda m: (
                m.inserted_on or datetime.min.replace(tzinfo=timezone.utc),
                m.data.sequence_number if m.data else 0,
            )
        )
        return received

    async def _decode(self, raw: object) -> QueueMessage:
        body = str(getattr(raw, "content", "") or "")
        message = QueueMessage(
            queue_name=self.name,
            message_id=str(getattr(raw, "id", "")),
            pop_receipt=str(getattr(raw, "pop_receipt", "")),
            dequeue_count=int(getattr(raw, "dequeue_count", 0) or 0),
            inserted_on=getattr(raw, "inserted_on", None),
            next_visible_on=getattr(raw, "next_visible_on", None),
            body=body,
        )
        try:
            data = decode_message_data(body)
            if data.compressed_blob_name:
                data = decode_message_data(await self._payloads.download_text(data.compressed_blob_name))
            message.data = data
        except MessageDecodeError as exc:
            message.error = exc
        except ResourceNotFoundError as exc:
            message.error = MessageDecodeError(f"large-message blob is missing: {exc}")
        except Exception as exc:
            if is_storage_trouble(exc):  # fetching the payload failed: this message only (issue 14)
                message.download_error = exc
            else:
                message.error = MessageDecodeError(f"large-message payload cannot be read: {exc!r}")
        return message

    async def _put_back_undownloaded(self, received: list[QueueMessage]) -> list[QueueMessage]:
        """A large message whose blob could not be fetched goes back at once (visible again in
        a second), and the rest of the batch goes on; the whole receive must not fail and leave
        up to 32 messages invisible for the full visibility timeout."""
        failed = [m for m in received if m.download_error is not None]
        if not failed:
            return received
        for message in failed:
            log.warning(
                "queue.large_message_download_failed",
                extra={"queue": self.name, "message_id": message.message_id, "error": repr(message.download_error)},
            )
            with contextlib.suppress(Exception):  # if this fails too, only this message waits
                await self._update_visibility(message, _DOWNLOAD_RETRY_DELAY)
        return [m for m in received if m.download_error is None]

    async def delete(self, message: QueueMessage) -> None:
        """Delete; a message already gone (404, new pop receipt) is logged, not raised."""
        try:
            await self._client.delete_message(message.message_id, message.pop_receipt)
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):
                log.info("queue.message_gone", extra={"queue": self.name, "message_id": message.message_id})
                return
            raise

    async def abandon(self, message: QueueMessage, *, delay: timedelta | None = None) -> None:
        """Put a message back; by default with DTAS's exponential back-off."""
        wait = delay if delay is not None else abandon_delay(message.dequeue_count)
        if wait >= timedelta(seconds=_MAX_ABANDON_SECONDS) and delay is None:
            log.warning("queue.poison_message_detected", extra={"queue": self.name, "message_id": message.message_id})
        wait = min(wait, MAX_VISIBILITY_DELAY)
        await self._update_visibility(message, wait)

    async def renew(self, message: QueueMessage, visibility_timeout: timedelta) -> None:
        await self._update_visibility(message, visibility_timeout)

    async def _update_visibility(self, message: QueueMessage, visibility: timedelta) -> None:
        try:
            receipt = await self._client.update_message(
                message.message_id, message.pop_receipt, visibility_timeout=int(visibility.total_seconds())
            )
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):
                log.info("queue.message_gone", extra={"queue": self.name, "message_id": message.message_id})
                return
            raise
        message.pop_receipt = str(receipt.pop_receipt)
        message.next_visible_on = receipt.next_visible_on


class BackoffPoller:
    """Randomised exponential polling back-off (DTAS ``BackoffPollingHelper``) with a wake-up.

    After each empty poll the wait grows from 50 ms towards ``max_interval``; a successful
    receive resets it; :meth:`wake` (called when this process sends to the queue) ends the
    current wait at once and makes the next poll due now. :meth:`nudge` only ends the wait:
    an item handed over in memory is there to take, but the queue is no fuller than at the
    last poll, so :meth:`poll_due` keeps the back-off's schedule (no empty poll per hand-over).
    """

    def __init__(
        self, *, max_interval: float, min_interval: float = 0.05, rng: Callable[[], float] = random.random
    ) -> None:
        self._min = min_interval
        self._max = max(max_interval, min_interval)
        self._rng = rng
        self._failures = 0
        self._event = asyncio.Event()
        self._due = 0.0
        """``time.monotonic()`` at which the queue is worth polling again."""

    def next_interval(self) -> float:
        jitter = 0.8 + 0.4 * self._rng()
        interval = self._min + jitter * (2 ** max(self._failures - 1, 0)) * self._min if self._failures else self._min
        return min(interval, self._max)

    def poll_due(self) -> bool:
        return time.monotonic() >= self._due

    def back_off(self) -> float:
        """Record an empty poll: the next one is due after the grown interval (returned)."""
        interval = self.next_interval()
        self._failures = min(self._failures + 1, 64)
        self._due = time.monotonic() + interval
        return interval

    async def wait(self) -> None:
        """After an empty poll: back off (a wake-up ends the wait early)."""
        await self._wait_event(self.back_off())

    async def pause(self) -> None:
        """After a receive that did not fill its batch: the queue is most likely empty now.

        Wait the shortest interval before the next poll instead of polling at once into an
        empty queue; a send noticed meanwhile (even during the receive itself) ends it.
        """
        self._failures = 0
        self._due = time.monotonic() + self._min
        await self._wait_event(self._min)

    async def wait_until_due(self) -> None:
        """Wait for the next due poll, a wake-up or a nudge, whichever comes first."""
        await self._wait_event(max(0.0, self._due - time.monotonic()))

    async def _wait_event(self, seconds: float) -> None:
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), seconds)
            except asyncio.TimeoutError:
                pass
        self._event.clear()

    def reset(self) -> None:
        self._failures = 0
        self._due = 0.0

    def wake(self) -> None:
        self._failures = 0
        self._due = 0.0
        self._event.set()

    def nudge(self) -> None:
        self._event.set()
