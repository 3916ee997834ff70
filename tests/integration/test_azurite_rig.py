"""The test rig itself: the storage endpoint answers on all three services."""

from __future__ import annotations

import uuid

from azure.core.exceptions import ResourceNotFoundError

from durable_azstorage.connection import StorageAccount


async def test_blob_queue_table_round_trip(storage_account: StorageAccount) -> None:
    suffix = uuid.uuid4().hex[:12]
    async with storage_account.blob_service() as blobs:
        container = blobs.get_container_client(f"rig{suffix}")
        await container.create_container()
        await container.upload_blob("a/b.txt", b"hello")
        data = await (await container.download_blob("a/b.txt")).readall()
        assert data == b"hello"
        await container.delete_container()
    async with storage_account.queue_service() as queues:
        queue = queues.get_queue_client(f"rig{suffix}")
        await queue.create_queue()
        await queue.send_message('{"x":1}')
        received = [m async for m in queue.receive_messages(max_messages=1)]
        assert received[0].content == '{"x":1}'
        await queue.delete_queue()
    async with storage_account.table_service() as tables:
        table = await tables.create_table(f"Rig{suffix}")
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "", "Value": 1})
        row = await table.get_entity("p", "")
        assert row["Value"] == 1
        await tables.delete_table(f"Rig{suffix}")
        try:
            await table.get_entity("p", "")
        except ResourceNotFoundError:
            pass
