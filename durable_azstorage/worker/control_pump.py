"""One dequeue loop per owned control queue, feeding the per-instance session manager.

Back-pressure: the loop waits while the worker already holds ``control_queue_buffer_threshold``
messages, so prefetched messages do not sit in memory past their visibility timeout.
Undecodable messages are quarantined here, before they can reach an episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ..storage import TaskHubStorage
from ..storage.queues import BackoffPoller, QueueMessage
from .in_flight import InFlightMessages
from .poison import PoisonHandler
from .sessions import SessionManager

__all__ = ["ControlQueuePump", "instance_of"]

log = logging.getLogger(__name__)


def instance_of(message: QueueMessage) -> str:
    assert message.data is not None and message.data.task_message is not None
    return message.data.task_message.orchestration_instance.instance_id


class ControlQueuePump:
    """Receives batches from one control queue while this worker owns its partition."""

    def __init__(
        self,
        hub: TaskHubStorage,
        queue_name: str,
        sessions: SessionManager[QueueMessage],
        poison: PoisonHandler,
        in_flight: InFlightMessages | None = None,
        *,
        batch_size: int,
        visibility_timeout: timedelta,
        max_polling_interval: timedelta,
    ) -> None:
        self.queue_name = queue_name
        self._queue = hub.queue(queue_name)
        self._sessions = sessions
        self._poison = poison
        self._in_flight = in_flight
        self._batch_size = batch_size
        self._visibility = visibility_timeout
        self._poller = BackoffPoller(max_interval=max_polling_interval.total_seconds())
        self._queue.add_listener(self._poller.wake)
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # ---- LocalSink: messages this process sends to a queue it owns skip the receive call.
    @property
    def hold(self) -> timedelta:
        return self._visibility

    def accepts(self) -> bool:
        return not self._stopped and self._sessions.has_room

    def deliver(self, message: QueueMessage) -> bool:
        if self._stopped:
            return False
        self._sessions.add(self.queue_name, self._track([message]))
        return True

    def _track(self, messages: list[QueueMessage]) -> list[QueueMessage]:
        return messages if self._in_flight is None else self._in_flight.track(messages)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"control-pump-{self.queue_name}")

    async def stop(self) -> None:
        """Stop dequeuing and hand back what is buffered but not yet running.

        Buffered messages are made visible again at once (not after the 5-minute visibility
        timeout, as in DTAS), so the partition's next owner can continue in seconds.
        """
        self._stopped = True
        self._queue.remove_listener(self._poller.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        released = await self._sessions.drop_queue(self.queue_name)
        if self._in_flight is not None:
            self._in_flight.release(released)
        await asyncio.gather(*(self._queue.abandon(m, delay=timedelta(0)) for m in released), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._sessions.wait_for_room()
                messages = await self._queue.receive(self._batch_size, self._visibility)
                if not messages:
                    await self._poller.wait()
                    continue
                self._poller.reset()
                self._sessions.add(self.queue_name, self._track(await self._screen(messages)))
                if len(messages) < self._batch_size:
                    # The queue was drained: polling again at once would nearly always come back
                    # empty (a transaction for nothing). A send noticed meanwhile ends the pause.
                    await self._poller.pause()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("control_pump.receive_failed", extra={"queue": self.queue_name})
                await self._poller.wait()

    async def _screen(self, messages: list[QueueMessage]) -> list[QueueMessage]:
        good: list[QueueMessage] = []
        for message in messages:
            if message.error is not None or message.data is None or message.data.task_message is None:
                reason = f"undecodable control message: {message.error or 'no TaskMessage'}"
                await self._poison.quarantine(message, reason)
            else:
                good.append(message)
        return good
