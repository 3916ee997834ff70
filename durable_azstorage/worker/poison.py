"""Decides when a queue message is poison and moves it to the quarantine table.

Undecodable messages are quarantined at once (they will never decode); messages whose
processing keeps failing are quarantined after ``threshold`` dequeues. Quarantine writes the
record first and deletes the queue message second, so a crash in between only means the
message is quarantined twice (an idempotent upsert), never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..storage import TaskHubStorage
from ..storage.queues import QueueMessage

__all__ = ["PoisonHandler"]

log = logging.getLogger(__name__)


class PoisonHandler:
    def __init__(self, hub: TaskHubStorage, threshold: int) -> None:
        self._hub = hub
        self.threshold = threshold

    async def quarantine(self, message: QueueMessage, reason: str) -> None:
        tm = message.data.task_message if message.data is not None else None
        await self._hub.poison.quarantine(
            queue_name=message.queue_name,
            message_id=message.message_id,
            body=message.body,
            reason=reason,
            dequeue_count=message.dequeue_count,
            instance_id=tm.orchestration_instance.instance_id if tm else None,
            event_type=tm.event.event_type.name if tm else None,
        )
        await self._hub.queue(message.queue_name).delete(message)

    async def quarantine_if_exhausted(self, message: QueueMessage, reason: str) -> bool:
        if message.dequeue_count < self.threshold:
            return False
        await self.quarantine(message, f"{reason} (dequeued {message.dequeue_count} times)")
        return True

    async def abandon_all(self, messages: Sequence[QueueMessage], reason: str) -> None:
        """After a failed episode: put each message back with back-off, or quarantine it.

        Never raises: a message that cannot be abandoned re-appears when its lock expires.
        """
        for message in messages:
            if await self.quarantine_if_exhausted(message, reason):
                continue
            try:
                await self._hub.queue(message.queue_name).abandon(message)
            except Exception:
                log.exception("poison.abandon_failed", extra={"queue": message.queue_name})
