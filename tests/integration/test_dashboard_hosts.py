"""The dashboard inside ``run`` (FunctionsHost): mounted with the management API, counting the
worker's storage transactions, and showing the app's instances and timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from tests.helpers import eventually

pytestmark = pytest.mark.integration

APP = Path(__file__).parent / "functions_apps" / "v2_basic"


@pytest.fixture
async def host(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[FunctionsHost]:
    async with FunctionsHost.from_path(
        APP, storage_account, task_hub_name=task_hub_name, port=0, max_queue_polling_interval=timedelta(seconds=1)
    ) as running:
        yield running


async def test_run_serves_the_dashboard_of_its_hub(host: FunctionsHost) -> None:
    async with aiohttp.ClientSession(host.base_url) as http:
        async with http.post("/api/orchestrators/hello_orchestrator", json=["Lima"]) as r:
            instance_id = (await r.json())["id"]

        async def completed() -> dict[str, object] | None:
            async with http.get(f"/dashboard/api/instances/{instance_id}") as r:
                body = await r.json()
                return body if body.get("runtimeStatus") == "Completed" else None

        detail = await eventually(completed, timeout=60, interval=0.2, message="hello_orchestrator completed")
        bars = detail["timeline"]["bars"]  # type: ignore[index]
        assert [(b["kind"], b["status"]) for b in bars] == [("activity", "completed")]
        async with http.get("/dashboard/api/overview") as r:
            overview = await r.json()
        # The worker's own requests are counted: its partition leases and queue polls, not just ours.
        assert overview["transactions"]["total"] > 20 and overview["transactions"]["byService"]["queue"] > 0
        assert all(p["owner"] == host.settings.worker_id for p in overview["partitions"])
        async with http.get("/dashboard/instances/" + instance_id) as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
