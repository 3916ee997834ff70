"""Local dispatch: a message sent to a queue this process consumes is held, not polled for."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.queue_codec import MessageData
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, OrchestrationStatus, TaskMessage
from durable_azstorage.runtimes.base import ActivityResult
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.storage.queues import QueueMessage
from durable_azstorage.worker import Worker
from durable_azstorage.worker.activities import ActivityProcessor
from durable_azstorage.worker.poison import PoisonHandler
from tests.e2e import apps
from tests.helpers import eventually


def _message(instance_id: str) -> MessageData:
    return MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(
            event=EventRaisedEvent(name="e", input='"x"'),
            orchestration_instance=OrchestrationInstance(instance_id=instance_id),
        ),
    )


@dataclass
class _Sink:
    take: bool = True
    hold: timedelta = timedelta(seconds=60)
    taken: list[QueueMessage] = field(default_factory=list)

    def accepts(self) -> bool:
        return True

    def deliver(self, message: QueueMessage) -> bool:
        if self.take:
            self.taken.append(message)
        return self.take


@pytest.fixture
async def hub(storage_account: StorageAccount, task_hub_name: str) -> TaskHubStorage:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    return TaskHubStorage(storage_account, names)


async def test_a_held_message_is_stored_but_invisible_and_owned_by_the_sink(hub: TaskHubStorage) -> None:
    queue = hub.queue(hub.names.work_item_queue)
    sink = _Sink()
    queue.set_local_sink(sink)
    await queue.send(_message("held"))
    assert [_instance(m) for m in sink.taken] == ["held"]
    assert await queue.approximate_count() == 1  # durable: it is in the queue ...
    assert await queue.receive(32, timedelta(seconds=30)) == []  # ... but nobody else can take it
    await queue.delete(sink.taken[0])  # the pop receipt of the put works like a received one
    assert await queue.approximate_count() == 0
    await hub.close()


async def test_a_refused_message_is_visible_at_once(hub: TaskHubStorage) -> None:
    queue = hub.queue(hub.names.work_item_queue)
    queue.set_local_sink(_Sink(take=False))
    await queue.send(_message("refused"))
    received = await queue.receive(32, timedelta(seconds=30))
    assert len(received) == 1 and received[0].dequeue_count == 1
    await hub.close()


@pytest.mark.parametrize("local_dispatch", [True, False])
async def test_orchestrations_complete_with_and_without_local_dispatch(
    storage_account: StorageAccount, task_hub_name: str, local_dispatch: bool
) -> None:
    settings = WorkerSettings(
        task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1), local_dispatch=local_dispatch
    )
    worker = Worker(storage_account, settings)
    apps.register(worker)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        ids = [await client.schedule_new_orchestration("hello_sequence") for _ in range(5)]
        for instance_id in ids:
            state = await client.wait_for_completion(instance_id, timeout=60)
            assert state.runtime_status == OrchestrationStatus.Completed
            assert state.output is not None and "Lima" in state.output


async def test_release_local_hands_back_work_items_that_never_started(hub: TaskHubStorage) -> None:
    """What a graceful stop does with held work items: visible at once for another worker."""
    processor = ActivityProcessor(
        hub, _NoRuntime(), PoisonHandler(hub, 20), visibility_timeout=timedelta(minutes=5),
        max_polling_interval=timedelta(seconds=1), local_capacity=2,
    )
    queue = hub.queue(hub.names.work_item_queue)
    await queue.send(_message("a"))
    await queue.send(_message("b"))
    assert not processor.accepts()  # full: the next one goes through the queue
    await queue.send(_message("c"))
    assert len(await queue.receive(32, timedelta(seconds=30))) == 1
    await processor.release_local()
    released = await queue.receive(32, timedelta(seconds=30))
    assert sorted(_instance(m) for m in released) == ["a", "b"]
    await hub.close()


class _NoRuntime:
    async def run_activity(self, name: str, input: str | None, *, instance_id: str, task_id: int) -> ActivityResult:
        raise AssertionError("not called")


def _instance(message: QueueMessage) -> str:
    assert message.data is not None and message.data.task_message is not None
    return message.data.task_message.orchestration_instance.instance_id


async def test_a_client_in_the_same_process_wakes_the_idle_worker_at_once(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    """The worker polls at most every 30 s here; a start from this process must not wait for that."""
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=30))
    worker = Worker(storage_account, settings)
    apps.register(worker)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        # Let every poller back off towards its 30 s ceiling first.
        await eventually(lambda: _idle_long_enough(worker), timeout=30, message="pollers backed off")
        instance_id = await client.schedule_new_orchestration("hello_sequence")
        pump = worker._pumps[worker.hub.names.control_queue_for(instance_id)]
        # Handed over in memory once its Instances row exists: the pump was not even woken.
        assert pump._poller.next_interval() >= 2.0
        state = await client.wait_for_completion(instance_id, timeout=30)
        assert state.runtime_status == OrchestrationStatus.Completed


async def test_a_start_from_another_event_loop_wakes_the_idle_worker_at_once(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    """The sync client runs its own loop: no hand-over in memory, but its send ends the pump's wait."""
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=30))
    worker = Worker(storage_account, settings)
    apps.register(worker)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        await eventually(lambda: _idle_long_enough(worker), timeout=30, message="pollers backed off")
        instance_id = await asyncio.to_thread(_start_from_a_thread, storage_account, task_hub_name)
        pump = worker._pumps[worker.hub.names.control_queue_for(instance_id)]
        assert pump._poller.next_interval() < 1.0  # woken by the send, not by its own timer
        state = await client.wait_for_completion(instance_id, timeout=30)
        assert state.runtime_status == OrchestrationStatus.Completed


def _start_from_a_thread(storage_account: StorageAccount, task_hub_name: str) -> str:
    async def start() -> str:
        async with await TaskHubClient.open(storage_account, task_hub_name) as client:
            return await client.schedule_new_orchestration("hello_sequence")

    return asyncio.run(start())


def _idle_long_enough(worker: Worker) -> bool:
    return all(pump._poller.next_interval() >= 2.0 for pump in worker._pumps.values())


def _short_timer(ctx: Any, seconds: float) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=seconds))
    return "fired"


async def test_a_due_timer_wakes_the_idle_worker(storage_account: StorageAccount, task_hub_name: str) -> None:
    """Pollers back off towards 30 s here; the timer message's own wake-up makes it fire on time."""
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=30))
    worker = Worker(storage_account, settings)
    worker.add_orchestrator(_short_timer)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        instance_id = await client.schedule_new_orchestration("_short_timer", input=3)
        await eventually(lambda: _idle_long_enough(worker), timeout=30, message="pollers backed off")
        state = await client.wait_for_completion(instance_id, timeout=20)
        assert state.runtime_status == OrchestrationStatus.Completed
