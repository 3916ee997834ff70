"""Keeps the queue leases of a fixed set of messages for the duration of a block.

The worker host no longer needs it: :mod:`durable_azstorage.worker.in_flight` renews every
control message the worker holds (buffered or running, in-process or remote runtime, issue 14).
Kept for callers that hold messages outside a worker (tools, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from ..storage import TaskHubStorage
from ..storage.queues import QueueMessage

__all__ = ["keep_leases"]

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def keep_leases(
    hub: TaskHubStorage, messages: Sequence[QueueMessage], visibility: timedelta
) -> AsyncIterator[None]:
    """Renew every message's visibility (as Core does, 30 s before it ends) until the block exits."""
    period = max(visibility.total_seconds() - 30, visibility.total_seconds() / 2, 1.0)

    async def renew() -> None:
        while True:
            await asyncio.sleep(period)
            for message in messages:
                try:
                    await hub.queue(message.queue_name).renew(message, visibility)
                except Exception:
                    log.warning("worker.lease_renew_failed", extra={"message_id": message.message_id}, exc_info=True)

    task = asyncio.create_task(renew(), name="lease-keeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
