"""Issue 14 defect 1: control messages stay locked while in flight; a re-received copy is dropped.

The episode that applies an external event takes longer than the control queue's visibility
timeout. Without renewal the message re-appears mid-episode, is received again and applied a
second time: the orchestration, which waits for two events, completes on the first raise alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import EventRaisedEvent, EventType, OrchestrationStatus
from durable_azstorage.runtimes.base import EpisodeRequest, EpisodeResult, Registry
from durable_azstorage.runtimes.durabletask import DurableTaskOrchestrationRuntime
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually

VISIBILITY = timedelta(seconds=2)
SLOW = 3 * VISIBILITY.total_seconds()


def two_events(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[Any]]:
    first = yield ctx.wait_for_external_event("go")
    second = yield ctx.wait_for_external_event("go")
    return [first, second]


class SlowOnEvents:
    """User code that takes longer than the visibility timeout whenever an event arrives."""

    def __init__(self) -> None:
        registry = Registry()
        registry.add_orchestrator(two_events)
        self._inner = DurableTaskOrchestrationRuntime(registry)
        self.slow_episodes = 0

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        if any(isinstance(e, EventRaisedEvent) for e in request.new_events):
            self.slow_episodes += 1
            if SLOW:
                await asyncio.sleep(SLOW)  # the workload: an episode slower than the message lock
        return await self._inner.run_episode(request)


async def test_event_is_applied_once_when_its_episode_outlasts_the_visibility_timeout(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    runtime = SlowOnEvents()
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        partition_count=1,
        control_queue_visibility_timeout=VISIBILITY,
        max_queue_polling_interval=timedelta(seconds=0.5),
    )
    worker = Worker(storage_account, settings, orchestration_runtime=runtime)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        instance_id = await client.schedule_new_orchestration("two_events")

        async def running() -> bool:
            state = await client.get_orchestration_state(instance_id)
            return state is not None and state.runtime_status == OrchestrationStatus.Running

        await eventually(running, timeout=30, message="instance running")
        await client.raise_event(instance_id, "go", data="first")

        async def first_applied() -> bool:
            history = await client.get_orchestration_history(instance_id)
            return any(e.event_type == EventType.EventRaised for e in history)

        await eventually(first_applied, timeout=30, message="first event applied")
        # Past the point where an unrenewed copy would have been re-received and applied.
        held = lambda: len(getattr(worker, "_in_flight", None) or ())  # noqa: E731
        await eventually(lambda: runtime.slow_episodes >= 1 and held() == 0, timeout=30, message="batch settled")
        await client.raise_event(instance_id, "go", data="second")
        state = await client.wait_for_completion(instance_id, timeout=60)
        assert state is not None and state.runtime_status == OrchestrationStatus.Completed
        assert state.output == '["first", "second"]'
        history = await client.get_orchestration_history(instance_id)
        assert [e.input for e in history if e.event_type == EventType.EventRaised] == ['"first"', '"second"']


async def test_event_whose_delete_failed_after_the_commit_is_not_applied_again(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    """The checkpoint commits, then deleting the inbound EventRaised fails (storage trouble):
    the message comes back after its back-off, and must not be applied a second time."""
    from azure.core.exceptions import HttpResponseError

    from durable_azstorage.codec.names import TaskHubNames
    from durable_azstorage.storage.queues import QueueMessage

    registry_runtime = SlowOnEvents()
    settings = WorkerSettings(
        task_hub_name=task_hub_name, partition_count=1, max_queue_polling_interval=timedelta(seconds=0.5)
    )
    worker = Worker(storage_account, settings, orchestration_runtime=registry_runtime)
    global SLOW
    SLOW, saved = 0, SLOW
    failed: list[str] = []
    try:
        async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
            queue = worker.hub.queue(TaskHubNames(task_hub_name, 1).control_queues[0])
            real_delete = queue.delete

            async def delete_failing_once(message: QueueMessage) -> None:
                event = message.data.task_message.event if message.data and message.data.task_message else None
                if isinstance(event, EventRaisedEvent) and not failed:
                    failed.append(message.message_id)
                    error = HttpResponseError(message="Server Busy")
                    error.status_code = 503
                    raise error
                await real_delete(message)

            queue.delete = delete_failing_once  # type: ignore[method-assign]
            instance_id = await client.schedule_new_orchestration("two_events")

            async def running() -> bool:
                state = await client.get_orchestration_state(instance_id)
                return state is not None and state.runtime_status == OrchestrationStatus.Running

            await eventually(running, timeout=30, message="instance running")
            await client.raise_event(instance_id, "go", data="first")
            await eventually(lambda: bool(failed), timeout=30, message="the delete failed once")

            async def queue_empty() -> bool:
                return await queue.approximate_count() == 0

            # The copy comes back after the storage-trouble back-off and is dropped (deleted).
            await eventually(queue_empty, timeout=30, message="the returned copy was consumed")
            await client.raise_event(instance_id, "go", data="second")
            state = await client.wait_for_completion(instance_id, timeout=60)
            assert state is not None and state.output == '["first", "second"]'
    finally:
        SLOW = saved
