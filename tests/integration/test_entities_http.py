"""The Durable Functions entity HTTP routes (``/entities/{name}[/{key}]``) with a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.http import create_app
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.integration.test_entities import Counter, account
from tests.integration.test_http_api import BASE, _start_site


@pytest.fixture
async def api(
    storage_account: StorageAccount, task_hub_name: str
) -> AsyncIterator[tuple[aiohttp.ClientSession, Worker]]:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    worker = Worker(storage_account, settings)
    worker.add_entity(Counter)
    worker.add_entity(account)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        runner, url = await _start_site(create_app(client))
        async with aiohttp.ClientSession(url) as session:
            yield session, worker
        await runner.cleanup()


async def _get(session: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with session.get(BASE + path) as resp:
        return resp.status, (await resp.json() if resp.status == 200 else None)


async def test_signal_read_list_delete(api: tuple[aiohttp.ClientSession, Worker]) -> None:
    session, _ = api
    assert await _get(session, "/entities/counter/web") == (404, None)
    for amount in (2, 3):
        async with session.post(f"{BASE}/entities/Counter/web?op=add", json=amount) as resp:
            assert resp.status == 202 and await resp.read() == b""

    async def five() -> bool:
        return await _get(session, "/entities/counter/web") == (200, 5)

    await eventually(five, message="state 5 over HTTP")
    assert await _get(session, "/entities/account/$") == (404, None)  # "$" is the empty key (unused by the SDK)
    async with session.post(f"{BASE}/entities/account/a1?op=deposit", json=7) as resp:
        assert resp.status == 202

    async def listed() -> Any:
        status, body = await _get(session, "/entities?fetchState=true")
        return status == 200 and len(body) == 2 and body

    body = await eventually(listed, message="two entities listed")
    assert {(e["entityId"]["name"], e["entityId"]["key"], e["state"]) for e in body} == {
        ("counter", "web", 5),
        ("account", "a1", 7),
    }
    assert all(e["lastOperationTime"].endswith("Z") for e in body)
    async with session.get(f"{BASE}/entities/counter?top=1") as resp:
        assert resp.status == 200 and "x-ms-continuation-token" in resp.headers
        page = await resp.json()
        assert [e["state"] for e in page] == [None]  # fetchState defaults to false
    async with session.delete(f"{BASE}/entities/account/a1") as resp:
        assert resp.status == 202

    async def deleted() -> bool:
        return (await _get(session, "/entities/account/a1"))[0] == 404

    await eventually(deleted, message="entity deleted by DELETE")


async def test_bad_requests(api: tuple[aiohttp.ClientSession, Worker]) -> None:
    session, _ = api
    headers = {"Content-Type": "application/json"}
    async with session.post(f"{BASE}/entities/counter/k?op=add", data=b"{not json", headers=headers) as resp:
        assert resp.status == 400 and "Message" in await resp.json()
    async with session.get(f"{BASE}/entities?top=0") as resp:
        assert resp.status == 400
    async with session.post(f"{BASE}/entities/counter/k?op=add", data=b"plain text") as resp:
        assert resp.status == 202  # a non-JSON body is signalled as a JSON string, as DF does
