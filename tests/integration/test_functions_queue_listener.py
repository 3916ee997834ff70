"""The queue listener's host settings on Azurite: visibilityTimeout, batchSize / newBatchThreshold, metadata."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue.aio import QueueClient

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions._bindings import QueueEncoding
from durable_azstorage.functions._queue_trigger import QueueListener, QueueOptions
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def queues(storage_account: StorageAccount) -> AsyncIterator[tuple[QueueClient, QueueClient]]:
    name = "ql" + uuid.uuid4().hex[:12]
    async with storage_account.queue_service() as service:
        queue, poison = service.get_queue_client(name), service.get_queue_client(f"{name}-poison")
        await queue.create_queue()
        yield queue, poison


async def test_a_failed_message_waits_visibility_timeout_then_carries_its_metadata(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    queue, poison = queues
    attempts: list[tuple[float, Any]] = []

    async def invoke(message: Any, body: str, data: Mapping[str, Any]) -> None:
        attempts.append((time.monotonic(), message))
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    options = QueueOptions(max_polling_interval=timedelta(milliseconds=200), visibility_timeout=timedelta(seconds=2),
                           encoding=QueueEncoding(base64=False))
    sent = await queue.send_message("hello")
    listener = QueueListener("Retry", queue, poison, invoke, options)
    await listener.start()
    try:
        await eventually(lambda: len(attempts) == 2, timeout=15, interval=0.05, message="the retry")
    finally:
        await listener.stop()
    assert attempts[1][0] - attempts[0][0] >= 1.9  # visibilityTimeout 00:00:02
    first, second = attempts[0][1], attempts[1][1]
    assert (first.dequeue_count, second.dequeue_count) == (1, 2)
    assert first.id == second.id == sent.id and first.get_body() == b"hello"
    assert isinstance(first.insertion_time, datetime) and first.expiration_time > first.insertion_time
    assert second.time_next_visible > second.insertion_time and second.pop_receipt
    assert await queue.peek_messages() == []  # the successful retry deleted it


async def test_batch_size_plus_new_batch_threshold_bound_the_messages_in_flight(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    queue, poison = queues
    for n in range(12):
        await queue.send_message(f"m{n}")
    running, peak, release = 0, 0, asyncio.Event()

    async def invoke(message: Any, body: str, data: Mapping[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    options = QueueOptions(batch_size=4, new_batch_threshold=2, max_polling_interval=timedelta(milliseconds=200),
                           encoding=QueueEncoding(base64=False))
    listener = QueueListener("Bounded", queue, poison, invoke, options)
    await listener.start()
    try:
        await eventually(lambda: running == 4, timeout=10, interval=0.05, message="the first batch running")
        visible = len(await queue.peek_messages(max_messages=32))  # a storage round trip for the loop to act
        assert running == 4 and visible == 8  # 4 > newBatchThreshold 2: no new batch while they run
        release.set()
        await eventually(lambda: _empty(queue), timeout=15, interval=0.1, message="all 12 processed and deleted")
    finally:
        release.set()
        await listener.stop()
    assert peak <= 4 + 2, peak  # at most batchSize + newBatchThreshold in flight


async def _empty(queue: QueueClient) -> bool:
    return (await queue.get_queue_properties()).approximate_message_count == 0
