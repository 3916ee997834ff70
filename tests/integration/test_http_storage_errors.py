"""Issue 14 defect 8: storage trouble reaches HTTP callers as 503 + Retry-After / 404 / 409."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.azurite import DEV_ACCOUNT_KEY
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import RETRY_TOTAL_ENV, StorageAccount
from durable_azstorage.errors import CheckpointConflictError
from durable_azstorage.http import create_app
from durable_azstorage.http._requests import storage_error_response
from durable_azstorage.storage import TaskHubResources
from tests.chaos.proxy import FaultProxy, FaultRates

BASE = "/runtime/webhooks/durabletask"


def _http(status: int, retry_after: str | None = None) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    if retry_after is not None:
        error.response = type("R", (), {"headers": {"Retry-After": retry_after}})()  # type: ignore[assignment]
    return error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_http(503), 503),
        (_http(500), 503),
        (_http(408), 503),
        (ServiceRequestError("connection refused"), 503),
        (ResourceNotFoundError("The table specified does not exist."), 404),
        (_http(412), 409),
        (CheckpointConflictError("etag changed"), 409),
    ],
)
def test_storage_errors_map_to_actionable_statuses(error: Exception, status: int) -> None:
    response = storage_error_response(make_mocked_request("GET", f"{BASE}/instances/x"), error)
    assert response is not None and response.status == status
    if status == 503:
        assert response.headers["Retry-After"] == "5"
    assert storage_error_response(make_mocked_request("GET", "/"), RuntimeError("bug")) is None


def test_service_retry_after_is_passed_on() -> None:
    response = storage_error_response(make_mocked_request("GET", "/"), _http(503, retry_after="12"))
    assert response is not None and response.headers["Retry-After"] == "12"


async def test_unavailable_storage_answers_503_with_retry_after_over_http(
    storage_connection_string: str, task_hub_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = StorageAccount.from_connection_string(storage_connection_string)
    await TaskHubResources(account, TaskHubNames(task_hub_name)).create()
    proxy = FaultProxy(seed=1, rates=FaultRates(status_503=1.0, status_500=0, status_408=0, delay=0,
                                                reset_before=0, reset_after=0),
                       account_key=DEV_ACCOUNT_KEY)
    await proxy.start({"blob": account.blob_endpoint, "queue": account.queue_endpoint, "table": account.table_endpoint})
    monkeypatch.setenv(RETRY_TOTAL_ENV, "0")
    runner: web.AppRunner | None = None
    try:
        client = await TaskHubClient.open(StorageAccount.from_connection_string(proxy.connection_string), task_hub_name)
        runner = web.AppRunner(create_app(client))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        proxy.faults_on = True
        async with aiohttp.ClientSession() as session:
            for method, path in (("GET", "/instances/abc"), ("GET", "/instances"),
                                 ("POST", "/orchestrators/hello")):
                async with session.request(method, f"http://127.0.0.1:{port}{BASE}{path}") as resp:
                    body: Any = await resp.json()
                    assert resp.status == 503, (path, resp.status, body)
                    assert resp.headers["Retry-After"] == "5"
                    assert "retry later" in body["Message"]
        await client.close()
    finally:
        if runner is not None:
            await runner.cleanup()
        await proxy.stop()
