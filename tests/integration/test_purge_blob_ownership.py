"""Issue 14 defect 6: purge deletes exactly the instance's own blobs."""

from __future__ import annotations

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import escape_partition_key
from durable_azstorage.connection import StorageAccount
from durable_azstorage.storage import TaskHubResources, TaskHubStorage


async def test_purge_leaves_other_instances_blobs_alone(storage_account: StorageAccount, task_hub_name: str) -> None:
    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    async with await TaskHubClient.open(storage_account, task_hub_name) as client, TaskHubStorage(
        storage_account, names
    ) as hub:
        # An instance may be called "poison": the quarantine keeps large bodies under poison/.
        await client.schedule_new_orchestration("hello", instance_id="poison")
        mine = [
            "poison/message-0123456789abcdef0123456789abcdef-EventRaised.json.gz",
            f"{escape_partition_key('poison')}/history-0000000000000002-EventRaised-0A0B0C0D-Input.json.gz",
        ]
        others = [
            f"poison/{names.control_queues[0]}/0f1e2d3c.json.gz",  # a quarantined message's body
            "poison/readme.txt",  # not a blob the engine writes
        ]
        for name in [*mine, *others]:
            await hub.payloads.upload_text(name, "{}")
        await client.purge_instance("poison")
        container = hub.blob_service.get_container_client(names.large_messages_container)
        left = sorted([b.name async for b in container.list_blobs()])
    assert left == sorted(others)
