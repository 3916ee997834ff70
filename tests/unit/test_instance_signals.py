"""In-process wake-up of a client waiting on an Instances row this process writes."""

from __future__ import annotations

import asyncio
import threading

from durable_azstorage.storage.instance_signals import InstanceSignals


async def test_a_write_sets_the_waiters_of_that_row_only() -> None:
    signals = InstanceSignals()
    with signals.watch("t", "a") as a, signals.watch("t", "b") as b:
        signals.written("t", "a")
        assert a.is_set() and not b.is_set()
    signals.written("t", "a")  # nobody watches any more: nothing to do


async def test_a_write_from_another_thread_reaches_the_waiting_loop() -> None:
    signals = InstanceSignals()
    with signals.watch("t", "a") as event:
        thread = threading.Thread(target=signals.written, args=("t", "a"))
        thread.start()
        await asyncio.wait_for(event.wait(), 5)
        thread.join()
