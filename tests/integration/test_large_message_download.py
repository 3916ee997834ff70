"""Issue 14 defect 5: one transient error fetching a large message's blob spoils only that message."""

from __future__ import annotations

import uuid
from datetime import timedelta

from azure.core.exceptions import HttpResponseError

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.queue_codec import MessageData
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, TaskMessage
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.storage.queues import next_sequence_number
from tests.helpers import eventually


def _event(instance_id: str, payload: str) -> MessageData:
    return MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(
            event=EventRaisedEvent(name="e", input=payload),
            orchestration_instance=OrchestrationInstance(instance_id=instance_id),
        ),
        sequence_number=next_sequence_number(),
    )


async def test_blob_failure_puts_back_one_message_and_returns_the_rest(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    async with TaskHubStorage(storage_account, names) as hub:
        queue = hub.queue(names.control_queues[0])
        big = '"' + "x" * 80_000 + '"'  # > 45 KiB: travels as a blob
        await queue.send(_event("a", '"small-1"'), visibility_delay=timedelta(0))
        await queue.send(_event("b", big), visibility_delay=timedelta(0))
        await queue.send(_event("c", '"small-2"'), visibility_delay=timedelta(0))
        real_download = hub.payloads.download_text
        failures = []

        async def download_failing_once(name: str) -> str:
            if not failures:
                failures.append(name)
                error = HttpResponseError(message="Server Busy")
                error.status_code = 503
                raise error
            return await real_download(name)

        hub.payloads.download_text = download_failing_once  # type: ignore[method-assign]
        first = await queue.receive(32, timedelta(seconds=60))
        assert failures, "the blob download was attempted"
        assert sorted(m.data.task_message.event.input for m in first if m.data and m.data.task_message) == [  # type: ignore[union-attr]
            '"small-1"',
            '"small-2"',
        ]

        async def the_large_one_is_back() -> list[str]:
            again = await queue.receive(32, timedelta(seconds=60))
            return [m.data.task_message.event.input for m in again if m.data and m.data.task_message]  # type: ignore[union-attr]

        assert await eventually(the_large_one_is_back, timeout=10, interval=0.3) == [big]
