"""One generic fetch → process loop, used for orchestrations, activities and entities alike.

Why one loop: concurrency limits, error back-off and drain-on-shutdown are subtle, and
getting them right once beats three slightly different copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Dispatcher(Generic[T]):
    """Runs ``process(item)`` for items from ``fetch()``, at most ``concurrency`` at a time.

    ``fetch`` waits until work exists (it owns its polling back-off) and may return None
    to mean "nothing this time". A failing ``fetch`` or ``process`` is logged and retried
    after ``error_delay``; it never stops the loop.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T | None]],
        process: Callable[[T], Awaitable[None]],
        *,
        concurrency: int,
        error_delay: float = 1.0,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._process = process
        self._slots = asyncio.Semaphore(concurrency)
        self._error_delay = error_delay
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def active(self) -> int:
        return len(self._tasks)

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name=f"dispatcher-{self.name}")

    async def _run(self) -> None:
        # stop() cancels this task at its await points (a slot, a fetch); nothing else awaits.
        while not self._stopping.is_set():
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            try:
                item = await self._fetch()
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except Exception:
                self._slots.release()
                log.exception("dispatcher.fetch_failed", extra={"dispatcher": self.name})
                await self._pause(self._error_delay)
                continue
            if item is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run_one(item), name=f"{self.name}-item")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_one(self, item: T) -> None:
        try:
            await self._process(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatcher.process_failed", extra={"dispatcher": self.name})
        finally:
            self._slots.release()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop fetching, let running items finish for ``drain_timeout`` s, cancel the rest."""
        self._stopping.set()
        if self._loop_task is not None:
            # Waiting for a slot or in a fetch (which owns its polling wait): end it now.
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("dispatcher.drain_timeout", extra={"dispatcher": self.name, "cancelled": len(pending)})
                await asyncio.gather(*pending, return_exceptions=True)
