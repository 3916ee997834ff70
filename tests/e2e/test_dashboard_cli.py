"""``durable-azstorage dashboard`` and ``serve`` serve the dashboard, as a user starts them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid

import aiohttp
import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("verb", ["dashboard", "serve", "sidecar"])
async def test_the_cli_serves_the_dashboard(storage_connection_string: str, verb: str) -> None:
    port = _free_port()
    hub = "d" + uuid.uuid4().hex[:12]
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    args = ["--port", str(port)]
    if verb == "sidecar":  # gRPC on one port, the dashboard on another
        args = ["--port", str(_free_port()), "--dashboard-port", str(port), "--host", "127.0.0.1"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable_azstorage.cli", verb, "--task-hub-name", hub, *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def page() -> str | None:
                try:
                    async with http.get(f"{base}/dashboard/instances/some-id") as r:
                        return await r.text() if r.status == 200 else None
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, "the server exited"
                    return None

            html = await eventually(page, timeout=60, interval=0.2, message=f"{verb} serving /dashboard/")
            assert '<script type="module" src="/dashboard/static/js/app.js">' in html
            async with http.get(f"{base}/dashboard/static/js/app.js") as r:
                assert r.status == 200 and "javascript" in r.headers["Content-Type"]
            async with http.get(f"{base}/dashboard/api/instances") as r:
                if verb != "dashboard":  # the sidecar's worker / serve (as the Functions host does) created the hub
                    assert r.status == 200 and await r.json() == {"instances": [], "continuationToken": None}
                else:  # nothing created the hub yet
                    assert r.status == 404 and "does not exist in this storage account" in (await r.json())["Message"]
            async with http.get(f"{base}/dashboard/api/overview") as r:
                body = await r.json()
                assert r.status == 200 and body["taskHub"] == hub and len(body["partitions"]) == 4
            async with http.get(f"{base}/dashboard/api/instances?status=Nope") as r:
                assert r.status == 400 and "unknown status Nope" in (await r.json())["Message"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert f"http://127.0.0.1:{port}/dashboard/" in err.decode()


def test_the_dashboard_refuses_a_public_bind_without_a_key(storage_connection_string: str) -> None:
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    proc = subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "dashboard", "--host", "0.0.0.0", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]  # after the "dashboard of task hub ... in storage account ..." line
    assert last.startswith("error: refusing to serve the dashboard on '0.0.0.0' without a key"), proc.stderr


async def test_unreachable_storage_is_one_clear_error() -> None:
    from aiohttp import web

    from durable_azstorage.aio import TaskHubClient
    from durable_azstorage.codec.names import TaskHubNames
    from durable_azstorage.connection import StorageAccount
    from durable_azstorage.dashboard import create_dashboard_app
    from durable_azstorage.storage.task_hub_storage import TaskHubStorage

    nowhere = f"http://127.0.0.1:{_free_port()}/devstoreaccount1"
    account = StorageAccount.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint={nowhere};QueueEndpoint={nowhere};TableEndpoint={nowhere};"
    )
    async with TaskHubClient(TaskHubStorage(account, TaskHubNames("Nowhere"))) as client:
        runner = web.AppRunner(create_dashboard_app(client), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            async with aiohttp.ClientSession() as http, http.get(
                f"http://127.0.0.1:{runner.addresses[0][1]}/dashboard/api/instances"
            ) as r:
                body = await r.json()
            assert r.status == 503 and body["Message"].startswith("storage request failed: Cannot connect")
            assert "\n" not in body["Message"]
        finally:
            await runner.cleanup()
