"""Control-queue messages this worker holds: kept locked while in flight, re-received copies dropped.

Why: a message stays invisible only for the visibility timeout it was received (or locally
sent) with. An episode slower than that, a batch waiting behind a busy instance, or a message
held for local dispatch would otherwise re-appear, be received again and be applied twice — an
``EventRaised`` (external event, client entity signal) counted twice. So every held message is
renewed (``Update Message``) while it is held, whether it is buffered or running, and a copy
received again while we hold it (its lock lapsed anyway, e.g. during a storage outage) is not
processed a second time: its new pop receipt replaces the old one on the held copy, so the
held copy's eventual delete still works (DTAS ``MessageCollection.AddOrReplace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from ..model import utc_now
from ..storage import TaskHubStorage
from ..storage.queues import QueueMessage

__all__ = ["InFlightMessages"]

log = logging.getLogger(__name__)


class InFlightMessages:
    """Every control message between receive (or local delivery) and the end of its batch."""

    def __init__(self, hub: TaskHubStorage, visibility_timeout: timedelta) -> None:
        self._hub = hub
        self._visibility = visibility_timeout
        self._held: dict[tuple[str, str], QueueMessage] = {}
        self._task: asyncio.Task[None] | None = None
        self.duplicates_dropped = 0
        self.renewals = 0

    def __len__(self) -> int:
        return len(self._held)

    def track(self, messages: Iterable[QueueMessage]) -> list[QueueMessage]:
        """Hold ``messages``; returns those not already held (copies update the held one)."""
        fresh: list[QueueMessage] = []
        for message in messages:
            key = (message.queue_name, message.message_id)
            held = self._held.get(key)
            if held is None:
                self._held[key] = message
                fresh.append(message)
                continue
            held.pop_receipt = message.pop_receipt
            held.next_visible_on = message.next_visible_on
            held.dequeue_count = max(held.dequeue_count, message.dequeue_count)
            self.duplicates_dropped += 1
            log.warning(
                "control_queue.duplicate_message_dropped",
                extra={"queue": message.queue_name, "message_id": message.message_id},
            )
        return fresh

    def release(self, messages: Iterable[QueueMessage]) -> None:
        """The batch is settled (deleted, abandoned or handed back): stop renewing."""
        for message in messages:
            key = (message.queue_name, message.message_id)
            if self._held.get(key) is message:
                del self._held[key]

    @property
    def renew_period(self) -> float:
        """How often held messages are checked: a quarter of the timeout, at most 10 s."""
        return max(0.2, min(self._visibility.total_seconds() / 4, 10.0))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="control-message-renewal")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_period)
            await self.renew_due()

    async def renew_due(self) -> None:
        """Renew every held message with less than half its timeout left (DTAS ``RenewUntil``)."""
        now = utc_now()
        due = [m for m in list(self._held.values()) if _remaining(m, now) <= self._visibility / 2]
        if due:
            await asyncio.gather(*(self._renew(m) for m in due))

    async def _renew(self, message: QueueMessage) -> None:
        try:
            await self._hub.queue(message.queue_name).renew(message, self._visibility)
            self.renewals += 1
        except Exception:  # storage trouble: try again next period; the lock may lapse
            log.warning(
                "control_queue.renew_failed",
                extra={"queue": message.queue_name, "message_id": message.message_id},
                exc_info=True,
            )


def _remaining(message: QueueMessage, now: datetime) -> timedelta:
    visible = message.next_visible_on
    if visible is None:
        return timedelta(0)
    if visible.tzinfo is None:
        visible = visible.replace(tzinfo=timezone.utc)
    return visible - now
