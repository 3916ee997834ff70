"""The ``queueTrigger`` listener on an Azure Storage queue, with the host's settings and poison queue.

host.json ``extensions.queues`` (Functions 2.x+; the 1.x root ``queues`` section is read too):

==================  =======================================================================
``batchSize``       messages fetched per poll (1..32, default 16)
``newBatchThreshold`` fetch again when no more than this many are running (default
                    ``batchSize / 2 * processors``, as the host computes it)
``maxPollingInterval`` longest wait between polls of an empty queue (default 1 minute; a
                    TimeSpan string or milliseconds); waits grow from 100 ms, randomised
                    exponential back-off, and drop back to 0 after a message was found
``visibilityTimeout`` how long a failed message stays invisible before its retry (default 0)
``maxDequeueCount`` attempts before the message moves to ``{queue}-poison`` (default 5)
``messageEncoding`` ``base64`` (default) or ``none``
==================  =======================================================================

A message is held invisible for 10 minutes while its function runs and the visibility is
renewed halfway, so long functions keep it. Success deletes it; failure either releases it
(``visibilityTimeout``) or, on the last allowed attempt, copies it unchanged into
``{queue}-poison`` (created when needed) and deletes it. A message whose body is not valid
base64 when base64 is expected goes to the poison queue at once, as the host's decoding-failure
handler does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from ..app_files import ci_value
from ..errors import ConfigurationError
from ._bindings import QueueEncoding, binding_data_from_json
from ._timer_schedule import duration_setting

__all__ = ["QueueListener", "QueueOptions"]

log = logging.getLogger(__name__)

MIN_POLL = timedelta(milliseconds=100)
PROCESSING_VISIBILITY = timedelta(minutes=10)

_BASE64 = QueueEncoding()

Invoke = Callable[[FunctionsQueueMessage, str, Mapping[str, Any]], Awaitable[object]]


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = -1
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    max_dequeue_count: int = 5
    encoding: QueueEncoding = _BASE64

    @property
    def threshold(self) -> int:
        if self.new_batch_threshold >= 0:
            return self.new_batch_threshold
        return (self.batch_size // 2) * (os.cpu_count() or 1)

    @classmethod
    def from_host_json(cls, host_json: Mapping[str, Any]) -> QueueOptions:
        extensions = ci_value(host_json, "extensions") or {}
        section = ci_value(extensions, "queues") if isinstance(extensions, Mapping) else None
        section = section if isinstance(section, Mapping) else ci_value(host_json, "queues") or {}
        if not isinstance(section, Mapping):
            raise ConfigurationError("host.json: extensions.queues must be a JSON object")
        batch = _int(section, "batchSize", 16)
        if not 1 <= batch <= 32:
            raise ConfigurationError(f"host.json: extensions.queues.batchSize must be 1..32, not {batch}")
        encoding = str(ci_value(section, "messageEncoding") or "base64").lower()
        if encoding not in ("base64", "none"):
            raise ConfigurationError(f"host.json: extensions.queues.messageEncoding must be base64 or none, "
                                     f"not {encoding!r}")
        return cls(
            batch_size=batch,
            new_batch_threshold=_int(section, "newBatchThreshold", -1),
            max_polling_interval=_duration(section, "maxPollingInterval", timedelta(minutes=1)),
            visibility_timeout=_duration(section, "visibilityTimeout", timedelta(0)),
            max_dequeue_count=max(1, _int(section, "maxDequeueCount", 5)),
            encoding=QueueEncoding(base64=encoding == "base64"),
        )


def _int(section: Mapping[str, Any], key: str, default: int) -> int:
    value = ci_value(section, key)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"host.json: extensions.queues.{key} must be a whole number") from exc


def _duration(section: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    value = ci_value(section, key)
    return default if value is None else duration_setting(value, f"extensions.queues.{key}")


class QueueListener:
    """Polls one queue and runs its function per message, with poison handling."""

    def __init__(self, name: str, queue: QueueClient, poison: QueueClient, invoke: Invoke,
                 options: QueueOptions) -> None:
        self.name = name
        self._queue, self._poison, self._invoke, self._options = queue, poison, invoke, options
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._delay = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"queue {self.name}")
        log.info("functions.queue_listener_started",
                 extra={"function_name": self.name, "queue": self._queue.queue_name})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running:  # let functions that are running finish, as the host drains on stop
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                found = await self._poll()
            except ResourceNotFoundError:
                found = 0  # the queue does not exist yet: keep polling, as the host does
            except AzureError as exc:
                log.warning("functions.queue_poll_failed", extra={"queue": self._queue.queue_name, "error": str(exc)})
                found = 0
            await asyncio.sleep(self._next_delay(found > 0))
            while len(self._running) > self._options.threshold:
                await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)

    def _next_delay(self, found: bool) -> float:
        """Randomised exponential back-off from 100 ms to maxPollingInterval; 0 after a find."""
        if found:
            self._delay = 0.0
            return 0.0
        ceiling = self._options.max_polling_interval.total_seconds()
        base = max(MIN_POLL.total_seconds(), self._delay * 2)
        self._delay = min(ceiling, base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security
        return self._delay

    async def _poll(self) -> int:
        messages = self._queue.receive_messages(
            messages_per_page=self._options.batch_size,
            visibility_timeout=int(PROCESSING_VISIBILITY.total_seconds()),
            max_messages=self._options.batch_size,
        )
        count = 0
        async for message in messages:
            count += 1
            task = asyncio.create_task(self._process_logged(message))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return count

    async def _process_logged(self, message: QueueMessage) -> None:
        try:
            await self._process(message)
        except AzureError as exc:  # storage trouble: the message reappears when its visibility ends
            log.warning("functions.queue_message_failed", extra={"queue": self._queue.queue_name, "id": message.id,
                                                                 "error": str(exc)})

    async def _process(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) > self._options.max_dequeue_count:
            await self._to_poison(message)
            return
        try:
            body = self._options.encoding.decode(str(message.content))
        except ValueError:
            log.error("functions.queue_message_not_base64", extra={"queue": self._queue.queue_name, "id": message.id})
            await self._to_poison(message)
            return
        renewal = asyncio.create_task(self._keep_invisible(message))
        try:
            await self._invoke(_to_functions_message(message, body), body, _binding_data(message, body))
            succeeded = True
        except Exception:  # user code: retried or poisoned below
            log.exception("functions.queue_function_failed", extra={"function_name": self.name, "id": message.id,
                                                                    "dequeue_count": message.dequeue_count})
            succeeded = False
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        if succeeded:
            await self._delete(message)
        elif (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            await self._to_poison(message)
        else:
            with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
                await self._queue.update_message(
                    message, visibility_timeout=int(self._options.visibility_timeout.total_seconds()))

    async def _keep_invisible(self, message: QueueMessage) -> None:
        half = PROCESSING_VISIBILITY.total_seconds() / 2
        while True:
            await asyncio.sleep(half)
            updated = await self._queue.update_message(
                message, visibility_timeout=int(PROCESSING_VISIBILITY.total_seconds()))
            message.pop_receipt = updated.pop_receipt

    async def _to_poison(self, message: QueueMessage) -> None:
        log.warning("functions.queue_message_poisoned", extra={
            "function_name": self.name, "queue": self._queue.queue_name, "poison_queue": self._poison.queue_name,
            "id": message.id, "max_dequeue_count": self._options.max_dequeue_count})
        try:
            await self._poison.send_message(message.content)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await self._poison.create_queue()
            await self._poison.send_message(message.content)
        await self._delete(message)

    async def _delete(self, message: QueueMessage) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # another host took it over: theirs to delete
            await self._queue.delete_message(message)


def _to_functions_message(message: QueueMessage, body: str) -> FunctionsQueueMessage:
    return FunctionsQueueMessage(  # type: ignore[no-untyped-call]
        id=message.id, body=body, dequeue_count=message.dequeue_count, expiration_time=message.expires_on,
        insertion_time=message.inserted_on, time_next_visible=message.next_visible_on,
        pop_receipt=message.pop_receipt)


def _binding_data(message: QueueMessage, body: str) -> dict[str, Any]:
    data = binding_data_from_json(body)
    data.update({"QueueTrigger": body, "Id": message.id, "DequeueCount": message.dequeue_count,
                 "InsertionTime": message.inserted_on, "ExpirationTime": message.expires_on,
                 "NextVisibleTime": message.next_visible_on, "PopReceipt": message.pop_receipt})
    return data
