"""Wake a waiter in this process when this process writes an instance's Instances row.

``wait_for_completion`` polls the row (0.1 s, growing to 2 s, as DTAS's client does); when the
worker that completes the instance runs in the same process (a Functions-style host, the
gRPC sidecar, an app that starts and awaits its own orchestrations), its checkpoint ends the
client's wait at once and the client reads the row right away — the same read, no polling
delay. Writes by other processes are still seen by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

__all__ = ["InstanceSignals", "instance_signals"]


class InstanceSignals:
    """``(instances table, partition key) -> events`` of waiting clients, process-wide."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextlib.contextmanager
    def watch(self, table: str, partition_key: str) -> Iterator[asyncio.Event]:
        """An event set whenever this process writes that row, while the ``with`` lasts."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        key = (table, partition_key)
        with self._lock:
            self._waiters.setdefault(key, []).append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                entries = self._waiters.get(key, [])
                if entry in entries:
                    entries.remove(entry)
                if not entries:
                    self._waiters.pop(key, None)

    def written(self, table: str, partition_key: str) -> None:
        with self._lock:
            entries = list(self._waiters.get((table, partition_key), ()))
        if not entries:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, event in entries:
            if loop is current:
                event.set()
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed between the check and the call
                    loop.call_soon_threadsafe(event.set)


instance_signals = InstanceSignals()
