"""Wakes status waiters when this sidecar has just run an episode of their instance.

``WaitForInstanceStart``/``Completion`` poll the Instances row with a back-off up to 1 s. When
the episode ran here, the remote runtime says so the moment the worker answered (the
checkpoint follows within milliseconds), and the waiter re-reads at once with the back-off
reset, instead of sleeping out its current interval. Episodes run elsewhere are still seen by
polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["EpisodeHints"]


class EpisodeHints:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, instance_id: str) -> None:
        for event in self._waiters.get(instance_id, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, instance_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(instance_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(instance_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[instance_id]
