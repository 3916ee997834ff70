"""A v1 (function.json) app with a timer, a queue trigger on another connection, blob in/out, queue out.

host.json says ``messageEncoding: none`` and ``maxDequeueCount: 2``; queue names come from app
settings (``%V1InQueue%``); the bindings use the connection setting ``V1Other``, not
``AzureWebJobsStorage``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost, load_app
from durable_azstorage.functions._triggers import TriggerOptions
from tests.helpers import eventually

pytestmark = pytest.mark.integration

APP = Path(__file__).parent / "functions_apps" / "v1_triggers"
SUFFIX = uuid.uuid4().hex[:8]
SETTINGS = {"V1InQueue": f"V1In-{SUFFIX}", "V1TickQueue": f"v1tick-{SUFFIX}", "V1WatchQueue": f"v1watch-{SUFFIX}",
            "V1WatchContainer": f"v1watch-{SUFFIX}",
            "AzureFunctionsWebHost__hostid": f"v1trig-{SUFFIX}"}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> Iterator[None]:
    for name, value in {**SETTINGS, "V1Other": storage_connection_string}.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture
async def host(settings: None, storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(
        APP, storage_account, task_hub_name=task_hub_name, port=0,
        trigger_options=TriggerOptions(blob_polling_interval=timedelta(seconds=1)),
    ) as running:
        yield running


async def _messages(account: StorageAccount, queue: str) -> list[str]:
    async with account.queue_service() as service:
        try:
            return [m.content for m in await service.get_queue_client(queue).peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def test_the_v1_index_has_the_triggers_and_keeps_the_unsupported_warning() -> None:
    index = load_app(APP)
    assert sorted((t.name, t.trigger.type) for t in index.triggers) == [
        ("Copy", "queuetrigger"), ("Tick", "timertrigger"), ("Watch", "blobtrigger")]
    assert index.problems == ["function 'Cosmos' was not loaded: binding 'docs' of type 'cosmosDBTrigger' is not "
                              "supported by this host (supported: HTTP, Durable Functions, timer, queue and blob "
                              "bindings)"]


async def test_run_on_startup_fires_once_into_a_return_queue_output(
    host: FunctionsHost, storage_account: StorageAccount
) -> None:
    async def fired() -> list[str]:
        return await _messages(storage_account, SETTINGS["V1TickQueue"])

    texts = await eventually(fired, timeout=20, interval=0.1, message="runOnStartup firing")
    assert [json.loads(t) for t in texts] == [{"pastDue": False, "status": {}}]  # useMonitor false: no status


async def test_plain_messages_blob_input_and_output_on_another_connection(
    host: FunctionsHost, storage_account: StorageAccount
) -> None:
    name = f"doc-{uuid.uuid4().hex[:6]}.txt"
    async with storage_account.blob_service() as service:
        try:
            await service.create_container("v1-in")
        except ResourceExistsError:
            pass
        await service.get_blob_client("v1-in", name).upload_blob(b"hello blob")
    async with storage_account.queue_service() as service:
        queue = service.get_queue_client(SETTINGS["V1InQueue"].lower())
        try:
            await queue.create_queue()
        except ResourceExistsError:
            pass
        await queue.send_message(name)  # plain text: host.json messageEncoding is none
        await queue.send_message("fail")

    async def written() -> list[bytes]:
        async with storage_account.blob_service() as service:
            container = service.get_container_client("v1-out")
            try:
                return [await (await container.download_blob(b.name)).readall()
                        async for b in container.list_blobs(name_starts_with=f"{name}-")]
            except ResourceNotFoundError:
                return []

    assert await eventually(written, timeout=30, interval=0.2, message="blob output") == [b"Copy: HELLO BLOB"]

    async def poisoned() -> list[str]:
        return await _messages(storage_account, SETTINGS["V1InQueue"].lower() + "-poison")

    assert await eventually(poisoned, timeout=30, interval=0.2, message="poison message") == ["fail"]


async def test_blob_trigger_receipts_and_the_blob_poison_queue(
    host: FunctionsHost, storage_account: StorageAccount
) -> None:
    container = SETTINGS["V1WatchContainer"]
    async with storage_account.blob_service() as service:
        await service.create_container(container)
        await service.get_blob_client(container, "good.txt").upload_blob(b"fine")
        await service.get_blob_client(container, "bad.txt").upload_blob(b"bad")
        await service.get_blob_client(container, "other.csv").upload_blob(b"not matched by {name}.txt")

    async def fired() -> list[str]:
        return await _messages(storage_account, SETTINGS["V1WatchQueue"])

    texts = await eventually(fired, timeout=30, interval=0.2, message="good.txt fired")
    assert [json.loads(t) for t in texts] == [{"name": f"{container}/good.txt", "length": 4, "data": "fine"}]

    async def poisoned() -> list[dict[str, str]]:
        found = [json.loads(t) for t in await _messages(storage_account, "webjobs-blobtrigger-poison")]
        return [m for m in found if m["ContainerName"] == container]

    poison = await eventually(poisoned, timeout=30, interval=0.2, message="bad.txt poisoned after 2 failures")
    assert poison[0]["BlobName"] == "bad.txt" and poison[0]["FunctionId"] == "Host.Functions.Watch"
    # Both versions have complete receipts where the Functions host keeps them.
    async with storage_account.blob_service() as service:
        hosts = service.get_container_client("azure-webjobs-hosts")
        prefix = f"blobreceipts/{SETTINGS['AzureFunctionsWebHost__hostid']}/Host.Functions.Watch/"
        receipts = {b.name.rsplit("/", 1)[-1]: b.metadata async for b in
                    hosts.list_blobs(name_starts_with=prefix, include=["metadata"])}
    assert receipts == {"good.txt": {}, "bad.txt": {}}
    assert await fired() == texts  # nothing fired twice
