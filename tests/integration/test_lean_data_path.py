"""The lean data path against real storage: selected by the setting, readable by the SDK and
back, the same typed errors, and the same transaction counts as the SDK path."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode
from azure.storage.blob import ContentSettings

from durable_azstorage.connection import StorageAccount
from durable_azstorage.lean_rest.blobs import LeanContainerClient
from durable_azstorage.lean_rest.queues import LeanQueueClient
from durable_azstorage.lean_rest.services import data_path_from_env
from durable_azstorage.lean_rest.tables import LeanTableClient
from durable_azstorage.metrics import TransactionCounter


def _name() -> str:
    return "lean" + uuid.uuid4().hex[:12]


def test_the_setting_selects_the_path(storage_account: StorageAccount) -> None:
    assert storage_account.data_path == data_path_from_env()
    lean = storage_account.with_data_path("lean")
    sdk = storage_account.with_data_path("sdk")
    assert isinstance(lean.table_service().get_table_client("x"), LeanTableClient)
    assert isinstance(lean.queue_service().get_queue_client("x"), LeanQueueClient)
    assert isinstance(lean.blob_service().get_container_client("x"), LeanContainerClient)
    assert not isinstance(sdk.table_service().get_table_client("x"), LeanTableClient)


async def test_queue_messages_cross_paths(storage_account: StorageAccount) -> None:
    name = _name()
    text = '{"a":"<é & \\u2028>"}'
    async with (
        storage_account.with_data_path("lean").queue_service() as lean,
        storage_account.with_data_path("sdk").queue_service() as sdk,
    ):
        lean_queue, sdk_queue = lean.get_queue_client(name), sdk.get_queue_client(name)
        await sdk_queue.create_queue()
        sent = await lean_queue.send_message(text, time_to_live=-1)
        received = [m async for m in sdk_queue.receive_messages(max_messages=32, visibility_timeout=30)]
        assert [m.content for m in received] == [text] and received[0].id == sent.id
        await sdk_queue.send_message(text)
        got = [m async for m in lean_queue.receive_messages(max_messages=32, visibility_timeout=30)]
        assert [m.content for m in got] == [text] and got[0].dequeue_count == 1
        updated = await lean_queue.update_message(got[0].id, got[0].pop_receipt, visibility_timeout=0)
        again = [m async for m in lean_queue.receive_messages(max_messages=32, visibility_timeout=30)]
        assert again[0].id == got[0].id and again[0].dequeue_count == 2 and updated.pop_receipt
        await lean_queue.delete_message(again[0].id, again[0].pop_receipt)
        with pytest.raises(ResourceNotFoundError):
            await lean_queue.delete_message(again[0].id, again[0].pop_receipt)
        await lean_queue.delete_message(received[0].id, received[0].pop_receipt)
        assert (await sdk_queue.get_queue_properties()).approximate_message_count == 0
        await sdk_queue.delete_queue()


async def test_table_operations_cross_paths(storage_account: StorageAccount) -> None:
    name = _name()
    when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    row = {"PartitionKey": "p'é 1+&", "RowKey": "0001", "S": "x", "N": 5, "When": when, "F": 1.5, "B": True}
    row["Big"] = EntityProperty(2**40, EdmType.INT64)
    async with (
        storage_account.with_data_path("lean").table_service() as lean_service,
        storage_account.with_data_path("sdk").table_service() as sdk_service,
    ):
        await sdk_service.create_table(name)
        lean, sdk = lean_service.get_table_client(name), sdk_service.get_table_client(name)
        created = await lean.create_entity(row)
        with pytest.raises(ResourceExistsError):
            await lean.create_entity(row)
        read_sdk = await sdk.get_entity(row["PartitionKey"], row["RowKey"])
        read_lean = await lean.get_entity(row["PartitionKey"], row["RowKey"])
        assert dict(read_lean) == dict(read_sdk) and read_lean.metadata == read_sdk.metadata
        assert read_lean.metadata["etag"] == created["etag"]
        sentinel = {"PartitionKey": row["PartitionKey"], "RowKey": "sentinel", "X": "1"}
        results = await lean.submit_transaction(
            [("upsert", {**row, "RowKey": "0002"}, {"mode": UpdateMode.REPLACE}), ("create", sentinel)]
        )
        etag = results[-1]["etag"]
        stale = {"mode": UpdateMode.MERGE, "etag": created["etag"], "match_condition": MatchConditions.IfNotModified}
        with pytest.raises(TableTransactionError) as conflict:
            await lean.submit_transaction([("upsert", {**row, "RowKey": "0003"}), ("update", sentinel, stale)])
        assert conflict.value.status_code == 412
        good = {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
        await lean.submit_transaction([("update", {**sentinel, "X": "2"}, good)])
        await lean.upsert_entity({"PartitionKey": row["PartitionKey"], "RowKey": "0001", "S": "y"})
        query = f"PartitionKey eq '{row['PartitionKey'].replace(chr(39), chr(39) * 2)}'"
        via_lean = [dict(e) async for e in lean.query_entities(query)]
        via_sdk = [dict(e) async for e in sdk.query_entities(query)]
        assert via_lean == via_sdk and [e["RowKey"] for e in via_lean] == ["0001", "0002", "sentinel"]
        assert via_lean[0]["S"] == "y" and via_lean[2]["X"] == "2"
        await lean.delete_entity(row["PartitionKey"], "0001")
        await lean.delete_entity(row["PartitionKey"], "0001")  # gone already: no error, as in the SDK
        with pytest.raises(ResourceNotFoundError):
            await lean.get_entity(row["PartitionKey"], "0001")
        await sdk_service.delete_table(name)


async def test_blobs_cross_paths(storage_account: StorageAccount) -> None:
    name = _name()
    blob = "a b/é#%+x.json.gz"
    settings = ContentSettings(content_type="application/octet-stream")
    async with (
        storage_account.with_data_path("lean").blob_service() as lean_service,
        storage_account.with_data_path("sdk").blob_service() as sdk_service,
    ):
        sdk = sdk_service.get_container_client(name)
        lean = lean_service.get_container_client(name)
        await sdk.create_container()
        await lean.upload_blob(blob, b"\x1f\x8bdata", overwrite=True, content_settings=settings)
        assert await (await sdk.download_blob(blob)).readall() == b"\x1f\x8bdata"
        with pytest.raises(ResourceExistsError):
            await lean.upload_blob(blob, b"other", overwrite=False)
        assert await (await lean.download_blob(blob)).readall() == b"\x1f\x8bdata"
        await lean.delete_blob(blob)
        with pytest.raises(ResourceNotFoundError):
            await lean.download_blob(blob)
        await sdk.delete_container()


async def _hot_operations(account: StorageAccount, name: str) -> None:
    async with account.queue_service() as queues, account.table_service() as tables:
        queue = queues.get_queue_client(name)
        await queue.create_queue()
        sent = await queue.send_message("m", time_to_live=-1)
        await queue.update_message(sent.id, sent.pop_receipt, visibility_timeout=0)
        async for page in queue.receive_messages(max_messages=32, visibility_timeout=30).by_page():
            async for message in page:
                await queue.delete_message(message.id, message.pop_receipt)
            break
        await queue.delete_queue()
        await tables.create_table(name)
        table = tables.get_table_client(name)
        await table.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": "1"})])
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "2"})
        await table.get_entity("p", "1")
        _ = [e async for e in table.query_entities("PartitionKey eq 'p'")]
        await tables.delete_table(name)


async def test_both_paths_count_the_same_transactions(storage_account: StorageAccount) -> None:
    ports = {
        urlsplit(storage_account.blob_endpoint).port: "blob",
        urlsplit(storage_account.queue_endpoint).port: "queue",
        urlsplit(storage_account.table_endpoint).port: "table",
    }
    counts: dict[str, Counter[tuple[str, str]]] = {}
    for path in ("lean", "sdk"):
        counter = TransactionCounter({p: s for p, s in ports.items() if p is not None})
        account = storage_account.with_data_path(path).with_client_kwargs(**counter.client_kwargs())
        await _hot_operations(account, _name())
        counts[path] = counter.snapshot()
    assert counts["lean"] == counts["sdk"]
    assert counts["lean"][("table", "EntityGroupTransaction")] == 1
    assert counts["lean"][("queue", "UpdateMessage")] == 1
