"""keep_leases: messages held for a slow (remote) episode stay invisible past their timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.queue_codec import MessageData
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, TaskMessage
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.worker.lease_keeper import keep_leases


async def test_held_messages_are_renewed_until_released(storage_account: StorageAccount, task_hub_name: str) -> None:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    async with TaskHubStorage(storage_account, names) as hub:
        queue = hub.queue(names.control_queues[0])
        md = MessageData(
            activity_id=uuid.uuid4(),
            task_message=TaskMessage(
                event=EventRaisedEvent(name="e", input="1"),
                orchestration_instance=OrchestrationInstance(instance_id="a"),
            ),
        )
        await queue.send(md, visibility_delay=timedelta(0))
        visibility = timedelta(seconds=2)
        [held] = await queue.receive(1, visibility)
        first_deadline = held.next_visible_on
        async with keep_leases(hub, [held], visibility):
            # Past the original timeout the message is still invisible to other receivers.
            deadline = time.monotonic() + 20
            while held.next_visible_on == first_deadline or time.monotonic() < deadline - 16:
                assert time.monotonic() < deadline, "the lease was never renewed"
                assert await queue.receive(1, visibility) == []
                await asyncio.sleep(0.2)
            assert await queue.receive(1, visibility) == []
        await queue.delete(held)  # the renewed pop receipt is the one that works
        assert await queue.receive(1, visibility) == []
