"""examples/functions_app, unchanged, on the local Functions host: every pattern driven over HTTP only.

Each test starts an orchestration through the app's own HTTP starter, follows the
``statusQueryGetUri`` it got back (polling with a deadline) and checks output, runtimeStatus and
customStatus, as a client of the app deployed on Azure would. The last test runs the same app
through ``durable-azstorage run`` in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parents[2] / "examples" / "functions_app"


@pytest.fixture(scope="module")
async def host(storage_account: StorageAccount) -> AsyncIterator[FunctionsHost]:
    """One host for the module (every test uses its own instances)."""
    hub = "fa" + uuid.uuid4().hex[:14]
    async with FunctionsHost.from_path(
        APP, storage_account, task_hub_name=hub, port=0, max_queue_polling_interval=timedelta(seconds=1)
    ) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def _start(http: aiohttp.ClientSession, base_url: str, name: str, payload: Any = None) -> dict[str, Any]:
    """POST /api/orchestrators/{name}: the 202 check-status payload."""
    async with http.post(f"{base_url}/api/orchestrators/{name}", data=json.dumps(payload)) as response:
        assert response.status == 202, await response.text()
        body: dict[str, Any] = await response.json()
        assert response.headers["Location"] == body["statusQueryGetUri"]
        return body


async def _status(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def _finished(http: aiohttp.ClientSession, started: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Follow statusQueryGetUri until it stops answering 202; return the final status body."""
    url = started["statusQueryGetUri"]

    async def probe() -> tuple[int, dict[str, Any]] | None:
        code, body = await _status(http, url)
        return None if code == 202 else (code, body)

    code, body = await eventually(probe, timeout=timeout, interval=0.1, message=f"{started['id']} finished")
    assert body["instanceId"] == started["id"]
    if body["runtimeStatus"] == "Completed":
        assert code == 200, body
    return body


async def _custom_status(http: aiohttp.ClientSession, started: dict[str, Any], expected: Any) -> dict[str, Any]:
    """Poll the status URL until the running instance shows ``expected`` as its customStatus."""

    async def probe() -> dict[str, Any] | None:
        _, body = await _status(http, started["statusQueryGetUri"])
        return body if body.get("customStatus") == expected else None

    return await eventually(probe, timeout=30, interval=0.1, message=f"customStatus {expected!r}")


async def _raise_event(http: aiohttp.ClientSession, started: dict[str, Any], name: str, data: Any) -> None:
    url = started["sendEventPostUri"].replace("{eventName}", name)
    async with http.post(url, json=data) as response:
        assert response.status == 202, await response.text()


def _decoded(value: Any) -> Any:
    """An input the orchestrator passed on (sub-orchestration, continue-as-new), as a JSON value.

    The 1.x SDK hands the extension these inputs already serialised, and the extension stores
    that text as a JSON string, so the status API on Azure shows them as a string of JSON.
    """
    return json.loads(value) if isinstance(value, str) else value


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------------- patterns


async def test_function_chaining(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "hello_sequence", ["Lima", "Oslo", "Cairo"])
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["name"] == "hello_sequence" and done["input"] == ["Lima", "Oslo", "Cairo"]
    assert done["output"] == ["Hello Lima!", "Hello Oslo!", "Hello Cairo!"]


async def test_fan_out_fan_in(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "fan_out_fan_in", {"count": 20})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"items": 20, "sum": sum(i * i for i in range(1, 21))}


async def test_async_http_api_status_terminate_purge(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    """The check-status payload and its URLs: status (202 while running), client get_status, terminate, purge."""
    started = await _start(http, host.base_url, "custom_status_workflow", ["only"])
    assert {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri"} <= set(started)
    running = await _custom_status(http, started, {"stage": "waitingForProceed", "progress": "1/1"})
    assert running["runtimeStatus"] == "Running"
    code, _ = await _status(http, started["statusQueryGetUri"])
    assert code == 202

    async with http.get(f"{host.base_url}/api/status/{started['id']}") as response:
        assert response.status == 200, await response.text()
        via_client = await response.json()
    assert via_client["instanceId"] == started["id"] and via_client["name"] == "custom_status_workflow"
    assert via_client["runtimeStatus"] == "Running" and via_client["input"] == ["only"]

    async with http.post(started["terminatePostUri"].replace("{text}", "no longer needed")) as response:
        assert response.status == 202, await response.text()
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Terminated"

    async with http.delete(started["purgeHistoryDeleteUri"]) as response:
        assert response.status == 200, await response.text()
    code, _ = await _status(http, started["statusQueryGetUri"])
    assert code == 404
    async with http.get(f"{host.base_url}/api/status/{started['id']}") as response:
        assert response.status == 404


async def test_start_and_wait_returns_the_output_or_the_status_urls(
    host: FunctionsHost, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{host.base_url}/api/orchestrators/hello_sequence/wait?timeoutMs=20000&intervalMs=100",
                         json=["Rome"]) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == ["Hello Rome!"]

    async with http.post(f"{host.base_url}/api/orchestrators/approval_workflow/wait?timeoutMs=300&intervalMs=100",
                         json={"timeoutSeconds": 600}) as response:
        assert response.status == 202, await response.text()
        pending = await response.json()
    assert pending["statusQueryGetUri"] and pending["sendEventPostUri"]
    await _raise_event(http, pending, "Approval", {"approved": False, "by": "bob"})
    done = await _finished(http, pending)
    assert done["output"] == {"outcome": "Rejected", "by": "bob"}


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"jobId": "j-ready", "pollingIntervalSeconds": 0.5, "readyAfterChecks": 3, "maxChecks": 10},
         {"jobId": "j-ready", "status": "Completed", "checks": 3}),
        ({"jobId": "j-slow", "pollingIntervalSeconds": 0.5, "readyAfterChecks": 99, "maxChecks": 2},
         {"jobId": "j-slow", "status": "GaveUp", "checks": 2}),
    ],
)
async def test_monitor(host: FunctionsHost, http: aiohttp.ClientSession, job: Any, expected: Any) -> None:
    started = await _start(http, host.base_url, "monitor_job", job)
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed" and done["output"] == expected
    last = "Completed" if expected["status"] == "Completed" else "Running"
    assert done["customStatus"] == {"jobId": job["jobId"], "check": expected["checks"], "jobStatus": last}
    # Every check but the last waited on a durable timer of pollingIntervalSeconds.
    waited = _when(done["lastUpdatedTime"]) - _when(done["createdTime"])
    assert waited >= timedelta(seconds=job["pollingIntervalSeconds"] * (expected["checks"] - 1)) - timedelta(seconds=1)


async def test_human_interaction_approved(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "approval_workflow", {"timeoutSeconds": 600})
    await _custom_status(http, started, "Waiting for approval")
    await _raise_event(http, started, "Approval", {"approved": True, "by": "alice"})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"outcome": "Approved", "by": "alice"}
    assert done["customStatus"] == "Approved"


async def test_human_interaction_timeout_escalates(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "approval_workflow", {"timeoutSeconds": 2, "escalateTo": "boss"})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"outcome": "Escalated", "escalatedTo": "boss"}
    assert done["customStatus"] == "Escalated"
    assert _when(done["lastUpdatedTime"]) - _when(done["createdTime"]) >= timedelta(seconds=2)


async def test_sub_orchestrations(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    orders = [
        {"id": "A", "quantity": 2, "unitPrice": 5},
        {"id": "B", "quantity": 1, "unitPrice": 7.5},
        {"id": "C", "quantity": 4, "unitPrice": 0.25},
    ]
    started = await _start(http, host.base_url, "process_orders", orders)
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    parent = started["id"]
    assert done["output"] == {
        "orders": [
            {"id": "A", "total": 10.0, "shipment": "shipment-A", "parent": parent},
            {"id": "B", "total": 7.5, "shipment": "shipment-B", "parent": parent},
            {"id": "C", "total": 1.0, "shipment": "shipment-C", "parent": parent},
        ],
        "total": 18.5,
    }
    child_id = f"{parent}:order:1"
    async with http.get(f"{host.base_url}/api/status/{quote(child_id, safe='')}") as response:
        assert response.status == 200, await response.text()
        child = await response.json()
    assert child["instanceId"] == child_id and child["name"] == "process_order"
    assert child["runtimeStatus"] == "Completed" and _decoded(child["input"]) == orders[1]


async def test_eternal_orchestration_stops_at_its_limit(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "counter_loop", {"limit": 3, "intervalSeconds": 0.2})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {"count": 3, "limit": 3}
    assert done["customStatus"] == {"count": 3, "limit": 3}
    assert _decoded(done["input"]) == {"limit": 3, "intervalSeconds": 0.2, "count": 2}  # the last generation's


async def test_retry_then_success(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds",
                           {"amount": 50, "failuresBeforeSuccess": 2, "maxAttempts": 3, "retryIntervalMs": 200})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == {
        "status": "Transferred", "debit": {"debited": 50}, "credit": {"credited": 50, "attempt": 3}
    }
    assert done["customStatus"] == {"stage": "done"}


async def test_retries_exhausted_compensates(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds",
                           {"amount": 70, "failuresBeforeSuccess": 5, "maxAttempts": 2, "retryIntervalMs": 200})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    output = done["output"]
    assert output["status"] == "Compensated" and output["refund"] == {"refunded": 70}
    assert "credit service unavailable (attempt 2)" in output["error"]
    assert done["customStatus"] == {"stage": "compensated"}


async def test_unhandled_failure_fails_the_instance(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds",
                           {"failuresBeforeSuccess": 1, "maxAttempts": 1, "retryIntervalMs": 100, "compensate": False})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Failed"
    assert "credit service unavailable (attempt 1)" in json.dumps(done["output"])
    assert done["customStatus"] == {"stage": "compensated"}


async def test_custom_status_while_running(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "custom_status_workflow", ["validate", "store"])
    running = await _custom_status(http, started, {"stage": "waitingForProceed", "progress": "2/2"})
    assert running["runtimeStatus"] == "Running"
    await _raise_event(http, started, "Proceed", "go")
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed"
    assert done["output"] == ["validate: ok", "store: ok"]
    assert done["customStatus"] == {"stage": "done", "note": "go"}


async def test_a_body_that_is_not_json_is_a_400(host: FunctionsHost, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{host.base_url}/api/orchestrators/hello_sequence", data=b"{not json") as response:
        assert response.status == 400
        assert "must be JSON" in (await response.json())["error"]


# --------------------------------------------------------------------------------- the CLI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_durable_azstorage_run_serves_the_app(storage_connection_string: str, tmp_path: Path) -> None:
    port, hub = _free_port(), "cli" + uuid.uuid4().hex[:12]
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    log = (tmp_path / "run.log").open("w+")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable_azstorage.cli", "run", str(APP), "--port", str(port), "--task-hub-name", hub,
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def up() -> bool:
                if proc.returncode is not None:
                    log.seek(0)
                    raise AssertionError(f"durable-azstorage run exited with {proc.returncode}:\n{log.read()}")
                try:
                    async with http.get(f"{base_url}/api/status/none-such") as response:
                        return response.status == 404
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(up, timeout=30, interval=0.2, message="durable-azstorage run listening")
            started = await _start(http, base_url, "hello_sequence", ["Kyiv"])
            assert started["statusQueryGetUri"].startswith(base_url)
            done = await _finished(http, started)
            assert done["runtimeStatus"] == "Completed" and done["output"] == ["Hello Kyiv!"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()
    assert proc.returncode == 0, f"exit code {proc.returncode} after SIGTERM (expected a graceful stop)"
