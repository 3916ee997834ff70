"""Run one worker as a long-lived process: probes first, then the worker, then a graceful stop.

Order on SIGTERM (what a container platform sends, then waits ``terminationGracePeriodSeconds``):
readiness turns 503 at once → control pumps stop → running episodes checkpoint (at most
``drain_timeout``) → every owned partition row is released, so the remaining hosts claim them at
their next poll (~2 s) instead of after the lease expires → running activities finish → exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable

from .health import HealthServer, HealthState
from .host import Worker

__all__ = ["probes", "serve_worker", "stop_on_signals"]

log = logging.getLogger(__name__)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (works as PID 1 in a container, where defaults are ignored)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@contextlib.asynccontextmanager
async def probes(
    worker: Worker, *, host: str = "127.0.0.1", port: int | None = None
) -> AsyncIterator[tuple[HealthState, HealthServer | None]]:
    """Serve /healthz and /readyz for ``worker`` (nothing when ``port`` is None); the caller moves
    ``state`` to running after the worker started and to stopping when a stop begins."""
    settings = worker.settings
    stale_after = max(3 * settings.partition_poll_interval.total_seconds(), 15.0)
    health = HealthState(
        worker, worker_id=settings.worker_id, task_hub=settings.task_hub_name, stale_after=stale_after
    )
    if port is None:
        yield health, None
        return
    async with HealthServer(health, host=host, port=port) as server:
        yield health, server


async def serve_worker(
    worker: Worker,
    stop: asyncio.Event,
    *,
    health_host: str = "127.0.0.1",
    health_port: int | None = None,
    on_started: Callable[[Worker, HealthServer | None], None] = lambda _w, _s: None,
    on_stopping: Callable[[], None] = lambda: None,
) -> None:
    """Start ``worker`` (and the probes if ``health_port`` is set), run until ``stop``, stop gracefully."""
    settings = worker.settings
    async with probes(worker, host=health_host, port=health_port) as (health, server):
        await worker.start()
        try:
            health.state = "running"
            on_started(worker, server)
            await stop.wait()
            health.state = "stopping"
            on_stopping()
            log.info("worker.stopping", extra={"worker_id": settings.worker_id})
        finally:
            health.state = "stopping"
            await worker.stop()
            health.state = "stopped"
