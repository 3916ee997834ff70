"""The generic dispatcher loop and the per-instance session grouping."""

from __future__ import annotations

import asyncio

import pytest

from durable_azstorage.errors import ConfigurationError
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker.dispatcher import Dispatcher
from durable_azstorage.worker.sessions import SessionManager
from tests.helpers import eventually


async def test_dispatcher_respects_concurrency_and_survives_errors() -> None:
    items: asyncio.Queue[int] = asyncio.Queue()
    for i in range(20):
        items.put_nowait(i)
    running = 0
    peak = 0
    done: list[int] = []

    async def process(item: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)  # yield so other items can start
        running -= 1
        if item == 3:
            raise RuntimeError("boom")
        done.append(item)

    dispatcher: Dispatcher[int] = Dispatcher("t", items.get, process, concurrency=4)
    dispatcher.start()
    await eventually(lambda: len(done) == 19, timeout=5, interval=0.001)
    await dispatcher.stop()
    assert peak <= 4
    assert sorted(done) == [i for i in range(20) if i != 3]


async def test_dispatcher_stop_drains_running_items() -> None:
    gate = asyncio.Event()
    finished: list[int] = []
    items: asyncio.Queue[int] = asyncio.Queue()
    items.put_nowait(1)

    async def process(item: int) -> None:
        await gate.wait()
        finished.append(item)

    dispatcher: Dispatcher[int] = Dispatcher("t", items.get, process, concurrency=2)
    dispatcher.start()
    await eventually(lambda: dispatcher.active == 1, timeout=5, interval=0.001)
    stopping = asyncio.create_task(dispatcher.stop(drain_timeout=5))
    gate.set()
    await stopping
    assert finished == [1]


async def test_session_manager_serialises_one_instance() -> None:
    manager: SessionManager[tuple[str, int]] = SessionManager(lambda m: m[0], capacity=10)
    manager.add("q0", [("a", 1), ("b", 1), ("a", 2)])
    first = await manager.next_batch()
    assert (first.instance_id, [m[1] for m in first.messages]) == ("a", [1, 2])
    manager.add("q0", [("a", 3)])  # arrives while "a" runs: must wait
    second = await manager.next_batch()
    assert second.instance_id == "b"
    await manager.complete(first)
    third = await asyncio.wait_for(manager.next_batch(), 1)
    assert (third.instance_id, third.messages) == ("a", [("a", 3)])
    await manager.complete(second)
    await manager.complete(third)
    assert manager.held == 0


async def test_session_manager_capacity_blocks_until_release() -> None:
    manager: SessionManager[tuple[str, int]] = SessionManager(lambda m: m[0], capacity=2)
    manager.add("q0", [("a", 1), ("b", 1)])
    waiter = asyncio.create_task(manager.wait_for_room())
    await asyncio.sleep(0)
    assert not waiter.done()
    batch = await manager.next_batch()
    await manager.complete(batch)
    await asyncio.wait_for(waiter, 1)


async def test_drop_queue_returns_pending_messages() -> None:
    manager: SessionManager[tuple[str, int]] = SessionManager(lambda m: m[0], capacity=10)
    manager.add("q0", [("a", 1)])
    manager.add("q1", [("b", 1)])
    assert await manager.drop_queue("q0") == [("a", 1)]
    assert manager.held == 1


async def test_parked_messages_stay_held_and_join_the_next_batch() -> None:
    """A re-run waiting for the rest of its recorded inputs parks what it has (worker/sessions.py)."""
    manager: SessionManager[tuple[str, int]] = SessionManager(lambda m: m[0], capacity=10)
    manager.add("q0", [("a", 2)])
    batch = await manager.next_batch()
    await manager.complete(batch, park=[("a", 2)], wake_after=60)
    assert manager.held == 1  # still held (and renewed by the worker), not handed out again
    manager.add("q0", [("a", 1)])  # the missing input is back
    again = await asyncio.wait_for(manager.next_batch(), 1)
    assert sorted(m[1] for m in again.messages) == [1, 2]
    await manager.complete(again, park=[("a", 2)])  # kept for the very next batch
    follow_up = await asyncio.wait_for(manager.next_batch(), 1)
    assert follow_up.messages == [("a", 2)]
    await manager.complete(follow_up)
    assert manager.held == 0


async def test_parked_messages_wake_up_on_their_own_and_drop_with_their_queue() -> None:
    manager: SessionManager[tuple[str, int]] = SessionManager(lambda m: m[0], capacity=10)
    manager.add("q0", [("a", 1)])
    await manager.complete(await manager.next_batch(), park=[("a", 1)], wake_after=0.05)
    woke = await asyncio.wait_for(manager.next_batch(), 2)
    assert woke.messages == [("a", 1)]
    await manager.complete(woke, park=[("a", 1)], wake_after=60)
    assert await manager.drop_queue("q0") == [("a", 1)]
    assert manager.held == 0


def test_settings_from_host_json() -> None:
    host = {
        "version": "2.0",
        "extensions": {
            "durableTask": {
                "hubName": "MyHub",
                "maxConcurrentActivityFunctions": 7,
                "storageProvider": {"partitionCount": 8, "maxQueuePollingInterval": "00:00:05"},
            }
        },
    }
    settings = WorkerSettings.from_host_json(host)
    assert (settings.task_hub_name, settings.partition_count, settings.max_concurrent_activities) == ("MyHub", 8, 7)
    assert settings.max_queue_polling_interval.total_seconds() == 5


@pytest.mark.parametrize("bad", [{"partition_count": 17}, {"task_hub_name": "x-y"}, {"control_queue_batch_size": 33}])
def test_settings_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        WorkerSettings(**bad)  # type: ignore[arg-type]


def test_partial_checkpoint_is_cut_back_to_the_last_complete_episode() -> None:
    from durable_azstorage.model import (
        ExecutionStartedEvent,
        OrchestratorCompletedEvent,
        OrchestratorStartedEvent,
        TaskCompletedEvent,
        TaskScheduledEvent,
    )
    from durable_azstorage.worker.orchestrations import _last_complete_episode

    first = [
        OrchestratorStartedEvent(),
        ExecutionStartedEvent(),
        TaskScheduledEvent(event_id=0),
        OrchestratorCompletedEvent(),
    ]
    partial = [OrchestratorStartedEvent(), TaskCompletedEvent(task_scheduled_id=0), TaskScheduledEvent(event_id=1)]
    assert _last_complete_episode(first + partial) == first
    assert _last_complete_episode(partial) == []
