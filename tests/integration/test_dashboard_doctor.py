"""The dashboard's health panel shows ``doctor``'s findings (its JSON API; the browser test is in tests/browser)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.dashboard import create_dashboard_app
from durable_azstorage.storage import TaskHubResources
from tests.helpers import eventually

STRANDED = "Control queues outside the partition count hold messages: 1"


@pytest.fixture
async def dashboard(storage_account: StorageAccount) -> AsyncIterator[str]:
    hub = "d" + uuid.uuid4().hex[:12]
    names = TaskHubNames(hub)
    await TaskHubResources(storage_account, names).create()
    async with storage_account.queue_service() as queues:
        stranded = queues.get_queue_client(f"{names.lower}-control-05")
        await stranded.create_queue()
        await stranded.send_message('{"left": "behind"}')
    async with await TaskHubClient.open(storage_account, hub) as client:
        runner = web.AppRunner(create_dashboard_app(client), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/dashboard"
        finally:
            await runner.cleanup()  # also stops the background doctor


async def test_health_panel_lists_doctor_findings(dashboard: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def health() -> list[dict[str, Any]] | None:
            async with http.get(f"{dashboard}/api/overview") as response:
                assert response.status == 200
                lines: list[dict[str, Any]] = (await response.json())["health"]
            return lines if any(line["title"] == STRANDED for line in lines) else None

        lines = await eventually(health, timeout=60, interval=0.5, message="doctor finding in the health panel")
    line = next(line for line in lines if line["title"] == STRANDED)
    assert line["level"] == "error" and "[partitions.stranded-queue]" in line["detail"]
    assert "control-05" in line["detail"]


async def test_health_panel_says_when_doctor_cannot_check(storage_account: StorageAccount) -> None:
    """A dashboard started before its hub exists: one info line, and the overview keeps working."""
    hub = "d" + uuid.uuid4().hex[:12]
    async with await TaskHubClient.open(storage_account, hub) as client:
        runner = web.AppRunner(create_dashboard_app(client), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/dashboard"
        try:
            async with aiohttp.ClientSession() as http:

                async def said() -> dict[str, Any] | None:
                    async with http.get(f"{base}/api/overview") as response:
                        lines: list[dict[str, Any]] = (await response.json())["health"]
                    return next((line for line in lines if line["title"] == "doctor could not check the hub"), None)

                line = await eventually(said, timeout=60, interval=0.5, message="doctor's error line")
            assert line["level"] == "info" and f"no task hub '{hub}'" in line["detail"]
        finally:
            await runner.cleanup()
