"""The transaction counter sees the requests of every storage client it is wired into."""

from __future__ import annotations

from urllib.parse import urlsplit

from durable_azstorage.connection import StorageAccount
from durable_azstorage.metrics import TransactionCounter


async def test_counter_sees_queue_table_and_blob_requests(storage_account: StorageAccount) -> None:
    ports = {
        urlsplit(storage_account.blob_endpoint).port: "blob",
        urlsplit(storage_account.queue_endpoint).port: "queue",
        urlsplit(storage_account.table_endpoint).port: "table",
    }
    counter = TransactionCounter({p: s for p, s in ports.items() if p is not None})
    account = storage_account.with_client_kwargs(**counter.client_kwargs())
    async with account.queue_service() as queues, account.table_service() as tables, account.blob_service() as blobs:
        queue = queues.get_queue_client("countme")
        await queue.create_queue()
        await queue.send_message("x")
        await queue.delete_queue()
        async for _ in tables.list_tables():
            pass
        await blobs.get_container_client("countme").exists()
    counts = counter.snapshot()
    assert counts[("queue", "CreateQueue")] == 1
    assert counts[("queue", "PutMessage")] == 1
    assert counts[("queue", "DeleteQueue")] == 1
    assert counter.by_service()["table"] >= 1
    assert counter.by_service()["blob"] >= 1
