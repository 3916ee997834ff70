"""Partition ownership through the ``{Hub}Partitions`` table (DTAS partition manager v3).

Each iteration reads all rows and, for each: claims free, expired or handed-over partitions;
renews its own; marks partitions of a shutting-down or over-loaded owner as wanted
(``NextOwner = me``); and hands its own partitions over when someone else wants them (stop
dequeuing, let running episodes finish, release). Every write is a Replace with ``If-Match``,
so two workers can never both believe they won the same row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from ..errors import TaskHubNotFoundError
from ..model import utc_now
from ..settings import WorkerSettings
from ..storage import Lease, LeaseConflictError, PartitionTable, TaskHubStorage

__all__ = ["PartitionManager", "claimable_by", "plan_steals"]

log = logging.getLogger(__name__)

QueueCallback = Callable[[str], Awaitable[None]]


def claimable_by(lease: Lease, me: str, now: datetime) -> bool:
    """Free and not promised to someone else, or its owner's lease has expired."""
    if lease.current_owner is None and lease.next_owner in (None, me):
        return True
    return lease.current_owner != me and lease.expires_at is not None and now >= lease.expires_at


def plan_steals(leases: list[Lease], me: str, now: datetime) -> list[Lease]:
    """Rows this worker should ask for (``NextOwner = me``) to balance the load.

    ``avg = partitions // (other owners + 1)``; rows being handed over count for their
    ``NextOwner``. An owner that drains for shutdown gives up all its rows.
    """
    owners: Counter[str] = Counter()
    for lease in leases:
        holder = lease.next_owner or lease.current_owner
        if holder is not None and not (lease.expires_at is not None and now >= lease.expires_at):
            owners[holder] += 1
    mine = owners.pop(me, 0)
    wanted = [
        lease
        for lease in leases
        if lease.current_owner not in (None, me) and lease.is_draining and lease.next_owner is None
    ]
    if not owners:
        return wanted
    average = len(leases) // (len(owners) + 1)
    if mine > average:
        return wanted
    for owner, count in owners.most_common():
        excess = count - average
        if excess <= 0:
            continue
        take = min(average - mine, excess) if mine < average else (1 if excess > 1 else 0)
        candidates = [lease for lease in leases if lease.current_owner == owner and lease.next_owner is None]
        for lease in candidates[:take]:
            if lease not in wanted:
                wanted.append(lease)
                mine += 1
    return wanted


class PartitionManager:
    """Runs the claim / renew / steal / hand-over loop and reports ownership changes."""

    def __init__(
        self,
        hub: TaskHubStorage,
        settings: WorkerSettings,
        *,
        on_acquired: QueueCallback,
        on_released: QueueCallback,
        is_idle: Callable[[str], bool] = lambda _queue: True,
    ) -> None:
        self._table: PartitionTable = hub.partitions
        self._settings = settings
        self._me = settings.worker_id
        self._on_acquired = on_acquired
        self._on_released = on_released
        self._is_idle = is_idle
        self._listening: set[str] = set()
        self._draining: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._fence_task: asyncio.Task[None] | None = None
        # Per owned partition: until when a row we read or wrote says the lease is ours.
        self._confirmed_until: dict[str, datetime] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.last_success: float | None = None  # time.monotonic() of the last good iteration (readiness)

    @property
    def owned(self) -> set[str]:
        return set(self._listening)

    @property
    def loop_failed(self) -> bool:
        """The claim/renew loop ended although no stop was asked for (liveness)."""
        return self._task is not None and self._task.done() and not self._stop.is_set()

    async def start(self) -> None:
        """Run one iteration now (so a lone worker owns partitions at once), then loop."""
        await self._iteration_safely()
        self._task = asyncio.create_task(self._loop(), name="partition-manager")
        self._fence_task = asyncio.create_task(self._fence_loop(), name="partition-fence")

    @property
    def fence_margin(self) -> timedelta:
        """Stop dispatching this long before an unconfirmed lease would expire."""
        return max(self._settings.lease_interval / 6, timedelta(seconds=1))

    async def _fence_loop(self) -> None:
        """Self-fencing that needs no storage: when the Partitions table cannot be read or
        written (outage, throttling, a hung request), ownership cannot be confirmed; stop
        dispatching a partition before its lease could expire and another host claim it.
        The next successful iteration that finds the row still ours resumes it."""
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.25)
            now = utc_now()
            for name in sorted(self._listening):
                until = self._confirmed_until.get(name)
                if until is not None and now >= until - self.fence_margin:
                    log.warning(
                        "partitions.ownership_unconfirmed",
                        extra={"queue": name, "worker_id": self._me, "lease_expires": until.isoformat()},
                    )
                    await self._release_locally(name, "ownership unconfirmed")

    async def _loop(self) -> None:
        while not self._stop.is_set():
            fast = bool(self._draining) or self._waiting_for_handover
            interval = self._settings.partition_poll_interval.total_seconds()
            interval = min(interval, 1.0) if fast else interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            if not self._stop.is_set():
                await self._iteration_safely()

    _waiting_for_handover = False

    async def _iteration_safely(self) -> None:
        for _ in range(10):
            try:
                await asyncio.wait_for(self._iteration(), timeout=10)
                self.last_success = time.monotonic()
                return
            except LeaseConflictError:
                continue  # someone wrote a row between our read and write: re-read now
            except TaskHubNotFoundError:
                log.warning("partitions.table_missing", extra={"worker_id": self._me})
                return
            except Exception:
                log.exception("partitions.iteration_failed", extra={"worker_id": self._me})
                return

    async def _iteration(self) -> None:
        now = utc_now()
        leases = await self._table.read_all()
        for lease in leases:
            if lease.name in self._listening and lease.current_owner != self._me:
                await self._release_locally(lease.name, "lost")  # self-fencing
        for lease in leases:
            await self._handle(lease, now)
        self._waiting_for_handover = False
        for lease in plan_steals(leases, self._me, now):
            lease.next_owner = self._me
            await self._write(lease)
            self._waiting_for_handover = True
            log.info("partitions.steal_requested", extra={"queue": lease.name, "owner": lease.current_owner})

    async def _handle(self, lease: Lease, now: datetime) -> None:
        if lease.current_owner == self._me and lease.next_owner is not None:
            await self._hand_over(lease, now)
        elif lease.current_owner == self._me:
            if self._renewal_due(lease, now):
                lease.last_renewal, lease.expires_at = now, now + self._settings.lease_interval
                await self._write(lease)
            if lease.expires_at is not None and now < lease.expires_at - self.fence_margin:
                self._confirmed_until[lease.name] = lease.expires_at
                await self._ensure_listening(lease.name)
        elif claimable_by(lease, self._me, now):
            lease.current_owner, lease.next_owner, lease.is_draining = self._me, None, False
            lease.owned_since = lease.last_renewal = now
            lease.expires_at = now + self._settings.lease_claim_duration
            await self._write(lease)
            self._confirmed_until[lease.name] = lease.expires_at
            await self._ensure_listening(lease.name)
            log.info("partitions.claimed", extra={"queue": lease.name, "worker_id": self._me})

    def _renewal_due(self, lease: Lease, now: datetime) -> bool:
        """Renew every ``lease_acquire_interval`` (DTAS cadence), not on every read."""
        if lease.last_renewal is None or lease.expires_at is None:
            return True
        return now - lease.last_renewal >= self._settings.lease_acquire_interval or (
            lease.expires_at - now < self._settings.lease_acquire_interval
        )

    async def _hand_over(self, lease: Lease, now: datetime) -> None:
        """Someone wants this partition: stop dequeuing, wait for running work, release."""
        if lease.name in self._listening:
            await self._release_locally(lease.name, "handing over")
            self._draining[lease.name] = now
        started = self._draining.setdefault(lease.name, now)
        finished = self._is_idle(lease.name) or now - started > self._settings.drain_timeout
        if finished:
            lease.current_owner, lease.is_draining = None, False
            self._draining.pop(lease.name, None)
            log.info("partitions.released", extra={"queue": lease.name, "to": lease.next_owner})
        else:
            lease.is_draining = True
            lease.last_renewal, lease.expires_at = now, now + self._settings.lease_interval
        await self._write(lease)

    async def _ensure_listening(self, name: str) -> None:
        if name not in self._listening:
            self._listening.add(name)
            await self._on_acquired(name)

    async def _release_locally(self, name: str, why: str) -> None:
        self._confirmed_until.pop(name, None)
        if name in self._listening:
            self._listening.discard(name)
            log.info("partitions.stop_listening", extra={"queue": name, "reason": why})
            await self._on_released(name)

    async def _write(self, lease: Lease) -> None:
        await self._table.replace(lease)

    async def stop(self) -> None:
        """Stop listening everywhere and release every owned row at once."""
        self._stop.set()
        self._wake.set()
        for task in (self._task, self._fence_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for name in list(self._listening):
            await self._release_locally(name, "shutdown")
        for _ in range(5):
            try:
                await self._release_all()
                return
            except LeaseConflictError:
                continue
            except Exception:
                log.exception("partitions.release_failed", extra={"worker_id": self._me})
                return

    async def _release_all(self) -> None:
        for lease in await self._table.read_all():
            if lease.current_owner == self._me:
                lease.current_owner, lease.is_draining = None, False
                lease.expires_at = utc_now() - timedelta(seconds=1)
                await self._write(lease)
                log.info("partitions.released", extra={"queue": lease.name, "reason": "shutdown"})

