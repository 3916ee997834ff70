"""The polling back-off: what ends a wait, and when the queue is worth polling again."""

from __future__ import annotations

import asyncio
import time

from durable_azstorage.storage.queues import BackoffPoller


def _poller() -> BackoffPoller:
    return BackoffPoller(max_interval=30.0, min_interval=0.05, rng=lambda: 0.5)


async def test_a_nudge_ends_the_wait_but_keeps_the_next_poll_on_schedule() -> None:
    poller = _poller()
    for _ in range(6):
        poller.back_off()  # six empty polls: the next is due in about 1.6 s
    assert not poller.poll_due()
    waiting = asyncio.ensure_future(poller.wait_until_due())
    await asyncio.sleep(0)
    poller.nudge()  # an item handed over in memory
    await asyncio.wait_for(waiting, 1.0)
    assert not poller.poll_due()  # the shared queue is no fuller than at the last poll


async def test_a_wake_makes_the_next_poll_due_at_once() -> None:
    poller = _poller()
    for _ in range(6):
        poller.back_off()
    waiting = asyncio.ensure_future(poller.wait())
    await asyncio.sleep(0)
    poller.wake()  # this process sent to the queue
    await asyncio.wait_for(waiting, 1.0)
    assert poller.poll_due()
    assert poller.next_interval() == 0.05


async def test_pause_after_a_partial_batch_waits_the_shortest_interval() -> None:
    poller = _poller()
    started = time.monotonic()
    await poller.pause()
    assert 0.04 <= time.monotonic() - started < 1.0
    assert poller.poll_due()


async def test_a_send_noticed_during_the_receive_ends_the_pause_at_once() -> None:
    poller = _poller()
    poller.wake()  # arrived while the receive was in flight
    started = time.monotonic()
    await poller.pause()
    assert time.monotonic() - started < 0.04
