"""Decides when a queue message is poison and moves it to the quarantine table.

Only a message that fails *on its own* is ever quarantined. Storage trouble (throttling, 5xx,
time-outs, lost connections, eTag races) is the account's fault, not the message's: such a
failure backs off and retries, and it does not count toward the threshold — the queue's
``DequeueCount`` grows during an outage, so the count that decides is the number of the
message's *own* failures this process has seen, or the dequeue count minus the storage
failures seen, whichever is larger (the latter still catches a message that crash-loops the
process). Undecodable messages are quarantined at once (they will never decode).

Quarantine writes the record first and deletes the queue message second, so a crash in
between only means the message is quarantined twice (an idempotent upsert), never lost. A
quarantined orchestration message also marks its instance ``Failed`` with the reason and the
command that requeues it (see docs/reliability.md): nothing may sit ``Running`` forever with
nothing to show why.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ..model.entities import is_entity_instance
from ..storage import TaskHubStorage
from ..storage.faults import is_storage_trouble
from ..storage.queues import QueueMessage, abandon_delay
from ..telemetry import metrics as otel_metrics

__all__ = ["FailureCounts", "PoisonHandler", "STORAGE_TROUBLE_MAX_BACKOFF"]

log = logging.getLogger(__name__)

STORAGE_TROUBLE_MAX_BACKOFF = timedelta(seconds=30)
"""A message put back because of storage trouble is retried at least this often."""
_MAX_TRACKED = 10_000


@dataclass
class _Counts:
    own: int = 0
    storage: int = 0


@dataclass
class FailureCounts:
    """Per message: own failures and storage failures seen by this process (bounded, LRU)."""

    _entries: OrderedDict[tuple[str, str], _Counts] = field(default_factory=OrderedDict)

    def of(self, message: QueueMessage) -> _Counts:
        key = (message.queue_name, message.message_id)
        counts = self._entries.get(key)
        if counts is None:
            counts = self._entries[key] = _Counts()
            while len(self._entries) > _MAX_TRACKED:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return counts

    def forget(self, message: QueueMessage) -> None:
        self._entries.pop((message.queue_name, message.message_id), None)

    def decisive_count(self, message: QueueMessage) -> int:
        """How many times the message has failed for reasons of its own (see module doc)."""
        counts = self.of(message)
        return max(counts.own, message.dequeue_count - counts.storage)


class PoisonHandler:
    def __init__(self, hub: TaskHubStorage, threshold: int, counts: FailureCounts | None = None) -> None:
        self._hub = hub
        self.threshold = threshold
        self.counts = counts if counts is not None else FailureCounts()

    async def quarantine(self, message: QueueMessage, reason: str) -> None:
        tm = message.data.task_message if message.data is not None else None
        instance_id = tm.orchestration_instance.instance_id if tm else None
        await self._hub.poison.quarantine(
            queue_name=message.queue_name,
            message_id=message.message_id,
            body=message.body,
            reason=reason,
            dequeue_count=message.dequeue_count,
            instance_id=instance_id,
            event_type=tm.event.event_type.name if tm else None,
        )
        if instance_id and not is_entity_instance(instance_id):
            await self._mark_instance(instance_id, message, reason)
        await self._hub.queue(message.queue_name).delete(message)
        self.counts.forget(message)
        otel_metrics.record_poison(message.queue_name)

    async def _mark_instance(self, instance_id: str, message: QueueMessage, reason: str) -> None:
        """Make the quarantine visible where users look first: the instance's status."""
        try:
            await self._hub.instances.mark_poisoned(
                instance_id,
                f"A message for this instance was quarantined as poison ({reason}). Fix the cause, then "
                f"run `durable-azstorage poison requeue --queue {message.queue_name} "
                f"--message-id {message.message_id}` to continue it.",
            )
        except Exception:  # the record is written; the status is a courtesy
            log.warning("poison.instance_mark_failed", extra={"instance_id": instance_id}, exc_info=True)

    async def quarantine_if_exhausted(self, message: QueueMessage, reason: str) -> bool:
        """Before processing: quarantine a message that already failed ``threshold`` times."""
        count = self.counts.decisive_count(message)
        if count < self.threshold:
            return False
        await self.quarantine(message, f"{reason} (dequeued {message.dequeue_count} times)")
        return True

    async def abandon_all(
        self, messages: Sequence[QueueMessage], reason: str, error: BaseException | None = None
    ) -> None:
        """After a failed episode: put each message back with back-off, or quarantine it.

        ``error`` defaults to the exception being handled (call this from an ``except`` block).
        Storage trouble never quarantines: it backs off at most 30 s and counts as nothing.
        Never raises: a message that cannot be abandoned re-appears when its lock expires.
        """
        failure = error if error is not None else sys.exc_info()[1]
        storage = is_storage_trouble(failure)
        for message in messages:
            counts = self.counts.of(message)
            if storage:
                counts.storage += 1
            else:
                counts.own += 1
                if await self._quarantine_own_failure(message, reason):
                    continue
            delay = min(abandon_delay(counts.storage), STORAGE_TROUBLE_MAX_BACKOFF) if storage else None
            try:
                await self._hub.queue(message.queue_name).abandon(message, delay=delay)
            except Exception:
                log.warning("poison.abandon_failed", extra={"queue": message.queue_name}, exc_info=True)

    async def _quarantine_own_failure(self, message: QueueMessage, reason: str) -> bool:
        count = self.counts.decisive_count(message)
        if count < self.threshold:
            return False
        try:
            await self.quarantine(message, f"{reason} (failed {count} times; dequeued {message.dequeue_count} times)")
        except Exception:
            log.warning("poison.quarantine_failed", extra={"queue": message.queue_name}, exc_info=True)
            return False
        return True
