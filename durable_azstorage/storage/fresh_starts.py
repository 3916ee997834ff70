"""Instances rows a client in this process just inserted, so a worker here need not read them back.

DTAS's duplicate-start check reads the Instances row of every top-level start the worker
dequeues (one ``Get Entity`` per orchestration, on the start's critical path). When the client
that inserted that row runs in the worker's own process — a Functions-style host, the gRPC
sidecar, an app that starts and runs orchestrations, the benchmark — the worker already knows
what the read would return: the row as inserted, ``Pending``, for exactly that execution id.

Only a successful **insert** is recorded (no earlier row existed, generation 0). The entry is
taken once, by the first batch that carries that start, and is then gone; an entry older than
:data:`MAX_AGE` or beyond :data:`LIMIT` entries is forgotten, so a process with a client and no
worker keeps a bounded table. A miss costs what it always cost: the read. What a read could
have seen that this record cannot is a change made by another process in the moment between
the insert and the worker's dequeue (a purge, or a second client replacing a Pending row when
Pending is not among its de-dupe statuses) — the same race the read itself has against a change
landing a moment after it; the checkpoint's sentinel eTag still stops a second writer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["LIMIT", "MAX_AGE", "FreshStarts", "fresh_starts"]

LIMIT = 4096
MAX_AGE = 60.0
"""Seconds; a start not dequeued by then is read from the table as usual."""


class FreshStarts:
    """``(instances table, instance id) -> (execution id, when)``, process-wide, thread-safe."""

    def __init__(self, *, limit: int = LIMIT, max_age: float = MAX_AGE) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._limit = limit
        self._max_age = max_age

    def record(self, table: str, instance_id: str, execution_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            key = (table, instance_id)
            self._entries.pop(key, None)
            self._entries[key] = (execution_id, now)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)
            self._expire(now)

    def forget(self, table: str, instance_id: str) -> None:
        with self._lock:
            self._entries.pop((table, instance_id), None)

    def take(self, table: str, instance_id: str, execution_id: str) -> bool:
        """True once if this process inserted the row of exactly this execution (recently)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.pop((table, instance_id), None)
        if entry is None:
            return False
        recorded, at = entry
        return recorded == execution_id and now - at <= self._max_age

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, (_, at) = next(iter(self._entries.items()))
            if now - at <= self._max_age:
                return
            del self._entries[key]


fresh_starts = FreshStarts()
