"""A v2 Functions app on the local host: HTTP triggers, the client binding's RPC, entities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import ConfigurationError
from durable_azstorage.functions import FunctionsHost, load_app

APP = Path(__file__).parent / "functions_apps" / "v2_basic"


@pytest.fixture
async def host(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(
        APP, storage_account, task_hub_name=task_hub_name, port=0, max_queue_polling_interval=timedelta(seconds=1)
    ) as running:
        yield running


async def _until_done(session: aiohttp.ClientSession, status_url: str, timeout: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with session.get(status_url) as response:
            if response.status == 200:
                return await response.json()
            assert response.status == 202, await response.text()
        assert loop.time() < deadline, f"{status_url} still running after {timeout} s"
        await asyncio.sleep(0.1)


def test_index_of_the_app() -> None:
    index = load_app(APP)
    assert set(index.orchestrators) == {"hello_orchestrator", "approval"}
    assert set(index.activities) == {"hello"} and set(index.entities) == {"Counter"}
    assert sorted(f.route for f in index.http) == ["ops/{instanceId}/{op}", "orchestrators/{functionName}"]


def test_missing_app_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="neither a v2 app"):
        load_app(tmp_path)
    (tmp_path / "function_app.py").write_text("import nope_not_a_module\n")
    with pytest.raises(ConfigurationError, match="importing the app failed: ModuleNotFoundError"):
        load_app(tmp_path)


async def test_start_over_http_and_poll_the_status_url(host: FunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{host.base_url}/api/orchestrators/hello_orchestrator", json=["Lima", "Oslo"]) as r:
            assert r.status == 202
            payload = await r.json()
            assert r.headers["Location"] == payload["statusQueryGetUri"]
        assert payload["statusQueryGetUri"].startswith(host.base_url + "/runtime/webhooks/durabletask/instances/")
        done = await _until_done(session, payload["statusQueryGetUri"])
        assert done["runtimeStatus"] == "Completed" and done["output"] == ["Hello Lima", "Hello Oslo"]
        async with session.get(f"{host.base_url}/api/ops/{payload['id']}/status") as r:
            assert await r.json() == {"runtimeStatus": "Completed", "output": ["Hello Lima", "Hello Oslo"]}


async def test_client_binding_events_entities_and_wait(host: FunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{host.base_url}/api/orchestrators/approval") as r:
            instance_id = (await r.json())["id"]
        async with session.post(f"{host.base_url}/api/ops/{instance_id}/raise", json={"ok": True}) as r:
            assert r.status == 202
        async with session.get(f"{host.base_url}/api/ops/{instance_id}/wait") as r:
            assert r.status == 200, await r.text()
            assert await r.json() == {"answer": {"ok": True}, "approvals": 1}
        for _ in range(3):
            async with session.post(f"{host.base_url}/api/ops/k1/signal?n=2") as r:
                assert r.status == 202
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            async with session.get(f"{host.base_url}/api/ops/k1/entity") as r:
                entity = await r.json()
            if entity == {"exists": True, "state": 6}:
                break
            assert loop.time() < deadline, entity
            await asyncio.sleep(0.1)


async def test_unknown_route_and_bad_method(host: FunctionsHost) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{host.base_url}/api/orchestrators/x") as r:
            assert r.status == 405
        async with session.get(f"{host.base_url}/api/nothing-here") as r:
            assert r.status == 404
