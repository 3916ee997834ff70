"""A bounded in-memory cache of instance histories, so a warm instance never re-reads its history.

Safe because every history write is guarded by the sentinel eTag: a stale entry can at worst
cause a :class:`CheckpointConflictError`, after which the entry is evicted and the episode is
retried from storage. Entries of a partition are dropped when this worker loses it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..model import HistoryEvent

__all__ = ["CachedHistory", "HistoryCache"]


@dataclass
class CachedHistory:
    """The committed history of the current execution and the eTag that guards it."""

    execution_id: str | None
    events: list[HistoryEvent]
    etag: str | None
    blob_names: list[str] = field(default_factory=list)
    instance_row_written_at: datetime | None = None
    """When this worker last merged the execution's Instances row (None: not since loading)."""
    instance_row_custom_status: str | None = None
    applied_message_ids: list[str] = field(default_factory=list)
    """Inbound messages whose effect this history holds (see worker/applied.py)."""
    episode_clock: str | None = None
    """The sentinel's recorded clock of an uncommitted episode (see worker/episode_clock.py)."""


class HistoryCache:
    """Least-recently-used, at most ``capacity`` instances (0 disables caching)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, CachedHistory] = OrderedDict()

    def get(self, instance_id: str) -> CachedHistory | None:
        entry = self._entries.get(instance_id)
        if entry is not None:
            self._entries.move_to_end(instance_id)
        return entry

    def put(self, instance_id: str, entry: CachedHistory) -> None:
        if self._capacity <= 0:
            return
        self._entries[instance_id] = entry
        self._entries.move_to_end(instance_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def evict(self, instance_id: str) -> None:
        self._entries.pop(instance_id, None)

    def evict_where(self, predicate: Callable[[str], bool]) -> int:
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)
