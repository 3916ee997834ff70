"""The HTTP management API on Azurite: routes, codes, headers, paging, auth, and a bounded fuzz."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp import web
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import ConfigurationError
from durable_azstorage.http import create_app, serve
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.integration.test_client_ops import echo, echo_orch, flaky, flaky_orch, waiter

BASE = "/runtime/webhooks/durabletask"
SPEC = Path(__file__).resolve().parents[2] / "durable_azstorage" / "http" / "openapi.json"


async def _start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def api(
    storage_account: StorageAccount, task_hub_name: str
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, TaskHubClient]]:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    async with await TaskHubClient.open(storage_account, task_hub_name) as client:
        runner, url = await _start_site(create_app(client, max_body_bytes=256 * 1024))
        async with aiohttp.ClientSession(url) as session:
            yield url, session, client
        await runner.cleanup()


@pytest.fixture
async def worker(storage_account: StorageAccount, task_hub_name: str, api: Any) -> AsyncIterator[Worker]:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    w = Worker(storage_account, settings)
    for fn in (echo_orch, flaky_orch, waiter):
        w.add_orchestrator(fn)
    for activity in (echo, flaky):
        w.add_activity(activity)
    async with w:
        await eventually(lambda: len(w.owned_partitions) == 4, timeout=30, message="partitions claimed")
        yield w


async def test_start_poll_until_done(api: Any, worker: Worker) -> None:
    url, session, client = api
    async with session.post(f"{BASE}/orchestrators/echo_orch", json={"a": [1, 2]}) as resp:
        assert resp.status == 202
        body = await resp.json()
        assert resp.headers["Location"] == body["statusQueryGetUri"]
        assert resp.headers["Retry-After"] == "10"
    assert body["statusQueryGetUri"].startswith(f"{url}{BASE}/instances/{body['id']}?taskHub={client.task_hub_name}")
    assert {"sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri", "restartPostUri"} <= set(body)

    async def finished() -> Any:
        async with aiohttp.ClientSession() as s, s.get(body["statusQueryGetUri"]) as r:
            if r.status == 202:
                assert r.headers["Retry-After"] == "5"
                return None
            assert r.status == 200
            return await r.json()

    status = await eventually(finished, timeout=60, interval=0.2, message="instance completed")
    assert status["runtimeStatus"] == "Completed" and status["output"] == {"a": [1, 2]}
    assert status["input"] == {"a": [1, 2]} and status["createdTime"].endswith("Z")
    async with session.get(f"{BASE}/instances/{body['id']}?showHistory=true&showHistoryOutput=true") as r:
        events = (await r.json())["historyEvents"]
    kinds = [e["EventType"] for e in events]
    assert kinds[0] == "ExecutionStarted" and "TaskCompleted" in kinds and "OrchestratorStarted" not in kinds
    completed = next(e for e in events if e["EventType"] == "TaskCompleted")
    assert completed["FunctionName"] == "echo" and completed["Result"] == {"a": [1, 2]}
    # Finished instances: events and terminate are 410 Gone.
    async with session.post(f"{BASE}/instances/{body['id']}/raiseEvent/x", json=1) as r:
        assert r.status == 410
    async with session.post(f"{BASE}/instances/{body['id']}/terminate") as r:
        assert r.status == 410
    async with session.post(f"{BASE}/instances/{body['id']}/rewind") as r:
        assert r.status == 410
    # Restart with a new id, then wait-for-completion mode returns the output directly.
    async with session.post(f"{BASE}/instances/{body['id']}/restart?timeout=30") as r:
        assert r.status == 200 and await r.json() == {"a": [1, 2]}
    async with session.delete(f"{BASE}/instances/{body['id']}") as r:
        assert r.status == 200 and await r.json() == {"instancesDeleted": 1}
    async with session.get(f"{BASE}/instances/{body['id']}") as r:
        assert r.status == 404 and "Message" in await r.json()


async def test_management_routes(api: Any, worker: Worker) -> None:
    _, session, _ = api
    async with session.post(f"{BASE}/orchestrators/waiter/w1") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "w1", "Running"), message="running")
    async with session.post(f"{BASE}/instances/w1/suspend?reason=pause") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "w1", "Suspended"), message="suspended")
    async with session.post(f"{BASE}/instances/w1/resume?reason=go") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "w1", "Running"), message="resumed")
    text = {"Content-Type": "text/plain"}
    as_json = {"Content-Type": "application/json"}
    async with session.post(f"{BASE}/instances/w1/raiseEvent/go", data="nope", headers=text) as r:
        assert r.status == 400
    async with session.post(f"{BASE}/instances/w1/raiseEvent/go", data="{bad", headers=as_json) as r:
        assert r.status == 400 and (await r.json())["Message"] == "Invalid JSON content"
    async with session.post(f"{BASE}/instances/w1/rewind") as r:
        assert r.status == 400  # not Failed
    async with session.post(f"{BASE}/instances/w1/raiseEvent/go", json={"ok": True}) as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "w1", "Completed"), message="completed")

    async with session.post(f"{BASE}/orchestrators/flaky_orch/f1", json="http") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "f1", "Failed"), message="failed")
    async with session.post(f"{BASE}/instances/f1/rewind?reason=retry") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "f1", "Completed"), message="rewound and completed")

    async with session.post(f"{BASE}/orchestrators/waiter/t1") as r:
        assert r.status == 202
    async with session.post(f"{BASE}/instances/t1/terminate?reason=stop") as r:
        assert r.status == 202
    await eventually(lambda: _status(session, "t1", "Terminated"), message="terminated")

    async with session.delete(f"{BASE}/instances") as r:
        assert r.status == 400
    async with session.delete(f"{BASE}/instances?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Completed") as r:
        assert r.status == 200 and (await r.json())["instancesDeleted"] == 2
    async with session.delete(f"{BASE}/instances?createdTimeFrom=2000-01-01T00:00:00Z&runtimeStatus=Completed") as r:
        assert r.status == 404


async def _status(session: aiohttp.ClientSession, instance_id: str, expected: str) -> bool:
    async with session.get(f"{BASE}/instances/{instance_id}") as r:
        return r.status in (200, 202) and (await r.json())["runtimeStatus"] == expected


async def test_bad_input(api: Any) -> None:
    _, session, _ = api
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", f"{BASE}/instances/unknown", {}, 404),
        ("DELETE", f"{BASE}/instances/unknown", {}, 404),
        ("POST", f"{BASE}/instances/unknown/terminate", {}, 404),
        ("POST", f"{BASE}/instances/unknown/raiseEvent/e", {"json": 1}, 404),
        ("POST", f"{BASE}/instances/unknown/restart", {}, 400),
        ("GET", f"{BASE}/instances?runtimeStatus=Bogus", {}, 400),
        ("GET", f"{BASE}/instances?top=0", {}, 400),
        ("GET", f"{BASE}/instances?createdTimeFrom=yesterday", {}, 400),
        ("GET", f"{BASE}/instances/x?showHistory=maybe", {}, 400),
        ("GET", f"{BASE}/instances?taskHub=OtherHub", {}, 400),
        ("POST", f"{BASE}/orchestrators/x", {"data": "{not json"}, 400),
        ("POST", f"{BASE}/orchestrators/x", {"data": b"x" * (300 * 1024)}, 413),
        ("POST", f"{BASE}/orchestrators/x/bad%23id", {}, 400),
        ("GET", f"{BASE}/nothing-here", {}, 404),
    ]
    for method, path, kwargs, expected in cases:
        async with session.request(method, path, **kwargs) as r:
            assert r.status == expected, (method, path, r.status, await r.text())
            assert "Message" in await r.json(content_type=None)
    async with session.get(f"{BASE}/instances", headers={"x-ms-continuation-token": "garbage!"}) as r:
        assert r.status == 400


async def test_paging_250_instances(api: Any) -> None:
    _, session, client = api
    await asyncio.gather(
        *(client.schedule_new_orchestration("echo_orch", instance_id=f"p-{i:03d}") for i in range(250))
    )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        async with session.get(f"{BASE}/instances?top=100&runtimeStatus=Pending,Running", headers=headers) as r:
            assert r.status == 200
            seen += [s["instanceId"] for s in await r.json()]
            token = r.headers["x-ms-continuation-token"]
        pages += 1
        if not token:
            break
    assert pages >= 3 and sorted(seen) == [f"p-{i:03d}" for i in range(250)]


async def test_key_and_loopback(api: Any, storage_account: StorageAccount, task_hub_name: str) -> None:
    _, _, client = api
    runner, url = await _start_site(create_app(client, key="s3cret"))
    try:
        async with aiohttp.ClientSession(url) as s:
            async with s.get(f"{BASE}/instances") as r:
                assert r.status == 401
            async with s.get(f"{BASE}/instances?code=s3cret") as r:
                assert r.status == 200
            async with s.get(f"{BASE}/instances", headers={"x-functions-key": "s3cret"}) as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
    with pytest.raises(ConfigurationError):
        await serve(storage_account, task_hub_name, host="0.0.0.0", port=0)


# ---------------------------------------------------------------------------- schemathesis

schema = schemathesis.openapi.from_path(str(SPEC))
schema.config.generation.update(max_examples=4)


@pytest.fixture(scope="module")
def threaded_server(storage_connection_string: str) -> Iterator[str]:
    """The API on its own loop thread: schemathesis sends blocking requests."""
    hub = "fuzz" + threading.get_ident().__str__()[-6:]
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}

    async def start() -> None:
        account = StorageAccount.from_connection_string(storage_connection_string)
        await TaskHubResources(account, TaskHubNames(hub)).create()
        client = await TaskHubClient.open(account, hub)
        runner, url = await _start_site(create_app(client, max_body_bytes=64 * 1024))
        ready.update(client=client, runner=runner, url=url)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield ready["url"] + BASE

    async def stop() -> None:
        await ready["runner"].cleanup()
        await ready["client"].close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@schema.parametrize()
def test_openapi_conformance(case: Any, threaded_server: str) -> None:
    if case.query:
        # Wait-for-completion mode would legitimately block for up to an hour (no worker here).
        case.query.pop("timeout", None)
    response = case.call(base_url=threaded_server, timeout=30)
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
