"""Queues and task hub resources, checked with the plain Azure SDK on Azurite."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
from azure.storage.queue.aio import QueueClient

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.queue_codec import MessageData, encode_message_data
from durable_azstorage.connection import BLOB_QUEUE_API_VERSION, StorageAccount
from durable_azstorage.errors import InvalidInstanceIdError
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, OrchestrationStatus, TaskMessage
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from tests.helpers import eventually


def _message(instance_id: str, payload: str = '"x"') -> MessageData:
    return MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(
            event=EventRaisedEvent(name="e", input=payload),
            orchestration_instance=OrchestrationInstance(instance_id=instance_id),
        ),
    )


@pytest.fixture
async def hub(storage_account: StorageAccount, task_hub_name: str) -> TaskHubStorage:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    return TaskHubStorage(storage_account, names)


async def test_create_is_idempotent_and_makes_the_dtas_resources(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    names = TaskHubNames(task_hub_name)
    hub = TaskHubResources(storage_account, names)
    await hub.create()
    await hub.create()
    described = await hub.describe()
    assert described.partition_count == 4
    assert all(described.tables.values())
    assert set(described.queues) == {names.work_item_queue, *names.control_queues}
    assert all(depth == 0 for depth in described.queues.values())
    assert described.containers[names.app_lease_container]
    async with storage_account.blob_service() as blobs:
        info = blobs.get_blob_client(names.app_lease_container, names.app_lease_info_blob)
        assert await (await info.download_blob()).readall() == b"{}"
    await hub.delete()
    assert not (await hub.describe()).exists


async def test_messages_are_raw_json_on_the_wire(hub: TaskHubStorage, storage_connection_string: str) -> None:
    async with hub:
        queue = hub.control_queue_for("abc")
        await queue.send(_message("abc"))
        raw = QueueClient.from_connection_string(
            storage_connection_string, queue.name, api_version=BLOB_QUEUE_API_VERSION
        )
        async with raw:
            peeked = await raw.peek_messages(max_messages=1)
        assert peeked[0].content.startswith('{"$type":"DurableTask.AzureStorage.MessageData"')
        received = await queue.receive(32, timedelta(seconds=30))
        assert len(received) == 1 and received[0].data is not None
        await queue.delete(received[0])


async def test_base64_and_garbage_messages(hub: TaskHubStorage, storage_connection_string: str) -> None:
    async with hub:
        queue = hub.control_queue_for("abc")
        raw = QueueClient.from_connection_string(
            storage_connection_string, queue.name, api_version=BLOB_QUEUE_API_VERSION
        )
        async with raw:
            text = encode_message_data(_message("abc"))
            await raw.send_message(base64.b64encode(text.encode()).decode())
            await raw.send_message("this is not a durable task message")
        received = await queue.receive(32, timedelta(seconds=30))
        decoded = [m for m in received if m.data is not None]
        broken = [m for m in received if m.error is not None]
        assert len(decoded) == 1 and len(broken) == 1
        assert broken[0].body == "this is not a durable task message"


async def test_large_message_goes_through_a_blob(hub: TaskHubStorage) -> None:
    async with hub:
        queue = hub.control_queue_for("big")
        payload = '"' + "x" * 60_000 + '"'
        blob_name = await queue.send(_message("big", payload))
        assert blob_name is not None and blob_name.startswith("big/message-")
        received = await queue.receive(1, timedelta(seconds=30))
        event = received[0].data.task_message.event  # type: ignore[union-attr]
        assert isinstance(event, EventRaisedEvent) and event.input == payload


async def test_delayed_send_and_abandon(hub: TaskHubStorage) -> None:
    async with hub:
        queue = hub.control_queue_for("later")
        await queue.send(_message("later"), visibility_delay=timedelta(seconds=2))
        assert await queue.receive(1, timedelta(seconds=30)) == []
        received = await eventually(lambda: queue.receive(1, timedelta(seconds=30)), timeout=20)
        await queue.abandon(received[0], delay=timedelta(0))
        again = await eventually(lambda: queue.receive(1, timedelta(seconds=30)), timeout=20)
        assert again[0].dequeue_count == 2


async def test_client_start_writes_message_then_pending_row(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    async with await TaskHubClient.open(storage_account, task_hub_name) as client:
        big = "y" * 5 * 1024 * 1024  # 5 MB input travels through blobs
        instance_id = await client.schedule_new_orchestration("Anything", input=big, instance_id="five-mb")
        state = await client.get_orchestration_state(instance_id)
        assert state is not None and state.runtime_status == OrchestrationStatus.Pending
        assert state.input == f'"{big}"'
        assert state.generation == 0
        with pytest.raises(InvalidInstanceIdError):
            await client.schedule_new_orchestration("Anything", instance_id="a/b")
