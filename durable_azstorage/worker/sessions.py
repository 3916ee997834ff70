"""Groups dequeued control messages per instance and hands out one batch per instance at a time.

Why: an orchestration must never run two episodes at once on one worker, and messages that
arrive while an episode runs must wait for it (then run as the next batch) rather than
start a second episode on stale history (DTAS OrchestrationSessionManager semantics).

A batch may also *park* messages it could not use yet (a re-run waiting for the rest of its
recorded inputs, worker/episode_clock.py): they stay held (and renewed) and join the instance's
next batch when more messages arrive for it, or after ``wake_after`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["InstanceBatch", "SessionManager"]

M = TypeVar("M")


@dataclass
class InstanceBatch(Generic[M]):
    """Messages for one instance from one control queue, processed as one episode."""

    instance_id: str
    queue_name: str
    messages: list[M] = field(default_factory=list)


class SessionManager(Generic[M]):
    """Pending batches per instance, a ready queue, and the set of instances being processed.

    ``capacity`` is the control-queue buffer threshold: pumps wait in :meth:`wait_for_room`
    while this many messages are held, so prefetch never outruns processing.
    """

    def __init__(self, instance_of: Callable[[M], str], *, capacity: int) -> None:
        self._instance_of = instance_of
        self._capacity = capacity
        self._pending: dict[str, InstanceBatch[M]] = {}
        self._active: dict[str, str] = {}  # instance id -> control queue
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._held = 0
        self._room = asyncio.Condition()
        self._parked: dict[str, InstanceBatch[M]] = {}

    @property
    def held(self) -> int:
        return self._held

    @property
    def has_room(self) -> bool:
        return self._held < self._capacity

    async def wait_for_room(self) -> None:
        async with self._room:
            await self._room.wait_for(lambda: self._held < self._capacity)

    def add(self, queue_name: str, messages: Iterable[M]) -> None:
        for message in messages:
            instance_id = self._instance_of(message)
            batch = self._pending.get(instance_id)
            if batch is None:
                batch = self._pending[instance_id] = InstanceBatch(instance_id, queue_name)
                parked = self._parked.pop(instance_id, None)
                if parked is not None:
                    batch.messages.extend(parked.messages)  # already counted as held
                if instance_id not in self._active:
                    self._ready.put_nowait(instance_id)
            batch.messages.append(message)
            self._held += 1

    def _unpark(self, instance_id: str) -> None:
        parked = self._parked.pop(instance_id, None)
        if parked is None:
            return
        self._held -= len(parked.messages)  # add() counts them again
        self.add(parked.queue_name, parked.messages)

    async def next_batch(self) -> InstanceBatch[M]:
        """Wait for an instance with pending messages that is not already being processed."""
        while True:
            instance_id = await self._ready.get()
            batch = self._pending.pop(instance_id, None)
            if batch is None or instance_id in self._active:
                if batch is not None:
                    self._pending[instance_id] = batch
                continue
            self._active[instance_id] = batch.queue_name
            return batch

    async def complete(self, batch: InstanceBatch[M], park: list[M] | None = None, wake_after: float = 0.0) -> None:
        """Mark the batch's messages as no longer held (but ``park``) and let queued follow-ups run."""
        self._active.pop(batch.instance_id, None)
        if park:
            parked = self._parked.setdefault(batch.instance_id, InstanceBatch(batch.instance_id, batch.queue_name))
            parked.messages.extend(park)
            if batch.instance_id in self._pending or wake_after <= 0:
                self._unpark(batch.instance_id)
            else:
                asyncio.get_running_loop().call_later(wake_after, self._unpark, batch.instance_id)
        if batch.instance_id in self._pending:
            self._ready.put_nowait(batch.instance_id)
        await self._release(len(batch.messages) - len(park or ()))

    async def drop_queue(self, queue_name: str) -> list[M]:
        """Forget pending (not running) batches of a lost partition; returns their messages."""
        dropped: list[M] = []
        for store in (self._pending, self._parked):
            for instance_id, batch in list(store.items()):
                if batch.queue_name == queue_name:
                    dropped.extend(batch.messages)
                    del store[instance_id]
        await self._release(len(dropped))
        return dropped

    def is_active(self, instance_id: str) -> bool:
        return instance_id in self._active

    def active_in_queue(self, queue_name: str) -> int:
        """Episodes running for a partition: a hand-over waits for them to finish."""
        return sum(1 for queue in self._active.values() if queue == queue_name)

    async def _release(self, count: int) -> None:
        async with self._room:
            self._held -= count
            self._room.notify_all()
