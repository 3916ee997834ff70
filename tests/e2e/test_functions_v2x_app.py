"""examples/functions_v2x_app (azure-functions-durable 2.x) under ``durable-azstorage run``, over HTTP only.

The host runs in a Python 3.13 venv with the 2.x SDK that :mod:`tests.functions2x_env` builds
when it is missing (cached per version set). Every pattern is started through the app's own
HTTP starter (the 2.x client speaking gRPC to the host's in-process client service at
``rpcBaseUrl``) and followed through the ``statusQueryGetUri`` it returned, as a client of the
app deployed on Azure would. The last tests run a 1.x app beside it and SIGKILL the host
mid-run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions import FunctionsHost
from tests.functions2x_env import APP, REPO, ensure_functions2x_python, functions2x_env
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

V1_APP = REPO / "examples" / "functions_app"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HostProcess:
    """``python -m durable_azstorage.cli run APP`` in the 3.13 venv."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    log: IO[str]

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


def _start_host(python: Path, app: Path, connection: str, hub: str, log_path: Path) -> HostProcess:
    port = _free_port()
    log = log_path.open("a")
    proc = subprocess.Popen(
        [str(python), "-m", "durable_azstorage.cli", "run", str(app), "--port", str(port), "--task-hub-name", hub],
        cwd=REPO, env=functions2x_env({"AzureWebJobsStorage": connection}), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return HostProcess(proc, f"http://127.0.0.1:{port}", log_path, log)


async def _wait_up(host: HostProcess, http: aiohttp.ClientSession) -> None:
    async def up() -> bool:
        if host.proc.poll() is not None:
            raise AssertionError(f"durable-azstorage run exited with {host.proc.returncode}:\n{host.output()}")
        try:
            async with http.get(f"{host.base_url}/api/status/none-such") as response:
                return response.status == 404
        except aiohttp.ClientConnectionError:
            return False

    await eventually(up, timeout=90, interval=0.2, message="durable-azstorage run (2.x app) listening")


@pytest.fixture(scope="module")
def python313() -> Path:
    return ensure_functions2x_python()


@pytest.fixture(scope="module")
def app_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app with test timings in host.json (1 s polling, short visibility timeouts)."""
    folder = tmp_path_factory.mktemp("v2x") / "app"
    shutil.copytree(APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    host_json = json.loads((folder / "host.json").read_text())
    provider = host_json["extensions"]["durableTask"].setdefault("storageProvider", {})
    provider.update({"maxQueuePollingInterval": "00:00:01", "controlQueueVisibilityTimeout": "00:00:10",
                     "workItemQueueVisibilityTimeout": "00:00:10"})
    (folder / "host.json").write_text(json.dumps(host_json, indent=2))
    return folder


@pytest.fixture(scope="module")
def host(python313: Path, app_copy: Path, storage_connection_string: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    hub = "v2x" + uuid.uuid4().hex[:12]
    running = _start_host(python313, app_copy, storage_connection_string, hub,
                          tmp_path_factory.mktemp("logs") / "host.log")
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"exit code {code} after SIGTERM:\n{running.output()[-4000:]}"


@pytest.fixture
async def http(host: HostProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await _wait_up(host, session)
        yield session


async def _start(http: aiohttp.ClientSession, base_url: str, name: str, payload: Any = None) -> dict[str, Any]:
    async with http.post(f"{base_url}/api/orchestrators/{name}", data=json.dumps(payload)) as response:
        assert response.status == 202, await response.text()
        body: dict[str, Any] = await response.json()
        assert response.headers["Location"] == body["statusQueryGetUri"]
        return body


async def _finished(http: aiohttp.ClientSession, started: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Follow statusQueryGetUri until it stops answering 202; the final status body."""

    async def probe() -> tuple[int, dict[str, Any]] | None:
        async with http.get(started["statusQueryGetUri"]) as response:
            return None if response.status == 202 else (response.status, await response.json())

    code, body = await eventually(probe, timeout=timeout, interval=0.1, message=f"{started['id']} finished")
    assert body["instanceId"] == started["id"]
    if body["runtimeStatus"] == "Completed":
        assert code == 200, body
    return body


async def _custom_status(http: aiohttp.ClientSession, started: dict[str, Any], expected: Any) -> None:
    async def probe() -> bool:
        async with http.get(started["statusQueryGetUri"]) as response:
            return bool((await response.json()).get("customStatus") == expected)

    await eventually(probe, timeout=30, interval=0.1, message=f"customStatus {expected!r}")


# --------------------------------------------------------------------------------- patterns


async def test_chaining_through_the_check_status_response(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "hello_sequence", ["Lima", "Oslo", "Cairo"])
    assert started["statusQueryGetUri"].startswith(f"{host.base_url}/runtime/webhooks/durabletask/instances/")
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Completed" and done["name"] == "hello_sequence"
    assert done["input"] == ["Lima", "Oslo", "Cairo"]
    assert done["output"] == ["Hello Lima!", "Hello Oslo!", "Hello Cairo!"]


async def test_fan_out_fan_in_and_the_client_status(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "fan_out_fan_in", {"count": 25})
    done = await _finished(http, started)
    assert done["output"] == {"items": 25, "sum": sum(i * i for i in range(1, 26))}
    async with http.get(f"{host.base_url}/api/status/{started['id']}") as response:  # the gRPC client's view
        assert response.status == 200
        view = await response.json()
    assert view["runtimeStatus"] == "COMPLETED" and view["output"] == done["output"]


async def test_a_plain_function_starter_gets_the_sync_client(host: HostProcess, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{host.base_url}/api/sync/orchestrators/hello_sequence", json=["Baku"]) as response:
        assert response.status == 202, await response.text()
        started = await response.json()
    assert (await _finished(http, started))["output"] == ["Hello Baku!"]


async def test_wait_for_completion_answers_with_the_output(host: HostProcess, http: aiohttp.ClientSession) -> None:
    url = f"{host.base_url}/api/orchestrators/hello_sequence/wait?timeoutMs=30000&intervalMs=200"
    async with http.post(url, json=["Kyiv"]) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == ["Hello Kyiv!"]


async def test_wait_for_completion_times_out_into_a_202(host: HostProcess, http: aiohttp.ClientSession) -> None:
    url = f"{host.base_url}/api/orchestrators/approval_workflow/wait?timeoutMs=500&intervalMs=100"
    async with http.post(url, json={"timeoutSeconds": 600}) as response:
        assert response.status == 202, await response.text()
        started = await response.json()
    async with http.post(started["terminatePostUri"].replace("{text}", "test-done")) as response:
        assert response.status == 202
    assert (await _finished(http, started))["runtimeStatus"] == "Terminated"


async def test_monitor_with_durable_timers(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "monitor_job",
                           {"jobId": "j1", "pollingIntervalSeconds": 0.5, "readyAfterChecks": 3})
    done = await _finished(http, started)
    assert done["output"] == {"jobId": "j1", "status": "Completed", "checks": 3}
    assert done["customStatus"] == {"jobId": "j1", "check": 3, "jobStatus": "Completed"}


async def test_human_interaction_approved_by_event(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "approval_workflow", {"timeoutSeconds": 600})
    await _custom_status(http, started, "Waiting for approval")
    url = started["sendEventPostUri"].replace("{eventName}", "Approval")
    async with http.post(url, json={"approved": True, "by": "ana"}) as response:
        assert response.status == 202, await response.text()
    done = await _finished(http, started)
    assert done["output"] == {"outcome": "Approved", "by": "ana"} and done["customStatus"] == "Approved"


async def test_human_interaction_escalates_on_timeout(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "approval_workflow", {"timeoutSeconds": 1, "escalateTo": "bo"})
    done = await _finished(http, started)
    assert done["output"] == {"outcome": "Escalated", "escalatedTo": "bo"}


async def test_sub_orchestrations(host: HostProcess, http: aiohttp.ClientSession) -> None:
    orders = [{"id": "a", "quantity": 2, "unitPrice": 3}, {"id": "b", "quantity": 1, "unitPrice": 4}]
    started = await _start(http, host.base_url, "process_orders", orders)
    done = await _finished(http, started)
    parent = started["id"]
    assert done["output"] == {
        "orders": [{"id": "a", "total": 6.0, "parent": parent}, {"id": "b", "total": 4.0, "parent": parent}],
        "total": 10.0,
    }
    child = started["statusQueryGetUri"].replace(parent, f"{parent}%3Aorder%3A1")
    async with http.get(child) as response:
        body = await response.json()
    assert body["runtimeStatus"] == "Completed" and body["name"] == "process_order"


async def test_eternal_orchestration_continues_as_new(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "counter_loop", {"limit": 3, "intervalSeconds": 0.2})
    done = await _finished(http, started)
    assert done["output"] == {"count": 3, "limit": 3}
    assert done["input"] == {"limit": 3, "intervalSeconds": 0.2, "count": 2}  # the last generation's input


async def test_retries_then_success(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds", {"failuresBeforeSuccess": 2, "retryIntervalMs": 100})
    done = await _finished(http, started)
    assert done["output"]["status"] == "Transferred" and done["output"]["credit"]["attempt"] == 3


async def test_retries_exhausted_then_compensation(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds",
                           {"failuresBeforeSuccess": 9, "retryIntervalMs": 100, "maxAttempts": 2})
    done = await _finished(http, started)
    assert done["output"]["status"] == "Compensated" and done["output"]["refund"] == {"refunded": 100}
    assert "credit service unavailable (attempt 2)" in done["output"]["error"]
    assert done["customStatus"] == {"stage": "compensated"}


async def test_an_unhandled_failure_ends_the_instance_failed(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "transfer_funds", {"failuresBeforeSuccess": 9, "retryIntervalMs": 100,
                                                                   "maxAttempts": 1, "compensate": False})
    done = await _finished(http, started)
    assert done["runtimeStatus"] == "Failed", done
    assert "credit service unavailable (attempt 1)" in json.dumps(done["output"])
    assert done["customStatus"] == {"stage": "compensated"}


async def test_entities_from_an_orchestration_and_from_http(host: HostProcess, http: aiohttp.ClientSession) -> None:
    key = uuid.uuid4().hex[:8]
    started = await _start(http, host.base_url, "entity_workflow", {"key": key})
    done = await _finished(http, started)
    assert done["output"]["deposited"] == 100 and done["output"]["withdrawn"] == 70
    assert done["output"]["overdraft"].startswith("refused:") and "insufficient funds" in done["output"]["overdraft"]
    assert done["output"]["counter"] == 5  # the signal was delivered before the call (same sender, in order)
    for _ in range(3):
        async with http.post(f"{host.base_url}/api/entities/counter/{key}/add", json=2) as response:
            assert response.status == 202

    async def counter() -> Any:
        async with http.get(f"{host.base_url}/api/entities/counter/{key}") as response:
            return response.status == 200 and (await response.json())["state"] == 11

    await eventually(counter, timeout=30, interval=0.1, message="counter at 11")
    async with http.get(f"{host.base_url}/api/entities/Account/{key}") as response:
        assert (await response.json())["state"] == 70
    async with http.get(f"{host.base_url}/api/entities/Account/none-{key}") as response:
        assert response.status == 404


async def test_management_api_and_dashboard_see_2x_instances(host: HostProcess, http: aiohttp.ClientSession) -> None:
    started = await _start(http, host.base_url, "hello_sequence", ["Rome"])
    await _finished(http, started)
    async with http.get(f"{host.base_url}/runtime/webhooks/durabletask/instances?runtimeStatus=Completed") as response:
        assert response.status == 200
        ids = {item["instanceId"] for item in await response.json()}
    assert started["id"] in ids
    async with http.get(f"{host.base_url}/dashboard/") as response:
        assert response.status == 200


# --------------------------------------------------------------------------------- side by side, crash


async def test_a_1x_app_runs_beside_the_2x_app(
    host: HostProcess, http: aiohttp.ClientSession, storage_account: StorageAccount
) -> None:
    """The 1.x example in this (older) Python, the 2.x example in 3.13, one storage account at once."""
    async with FunctionsHost.from_path(V1_APP, storage_account, task_hub_name="v1x" + uuid.uuid4().hex[:12],
                                       port=0) as v1:
        assert v1.index.sdk_major == 1
        v1_started, v2_started = await asyncio.gather(
            _start(http, v1.base_url, "fan_out_fan_in", {"count": 5}),
            _start(http, host.base_url, "fan_out_fan_in", {"count": 6}),
        )
        v1_done, v2_done = await asyncio.gather(_finished(http, v1_started), _finished(http, v2_started))
    assert v1_done["output"] == {"items": 5, "sum": 55}
    assert v2_done["output"] == {"items": 6, "sum": 91}


async def test_orchestrations_survive_a_sigkill_of_the_host(
    python313: Path, app_copy: Path, storage_connection_string: str, tmp_path: Path
) -> None:
    """Kill -9 the host while instances are mid-chain; a new host on the hub finishes every one, once."""
    hub = "v2k" + uuid.uuid4().hex[:12]
    log = tmp_path / "host.log"
    first = _start_host(python313, app_copy, storage_connection_string, hub, log)
    second: HostProcess | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await _wait_up(first, http)
            request = {"steps": 6, "delaySeconds": 0.3}
            started = await asyncio.gather(*(_start(http, first.base_url, "slow_sequence", request) for _ in range(4)))
            await asyncio.gather(*(_custom_status(http, s, {"done": 2}) for s in started))
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            first.log.close()
            second = _start_host(python313, app_copy, storage_connection_string, hub, log)
            await _wait_up(second, http)
            urls = [{**s, "statusQueryGetUri": s["statusQueryGetUri"].replace(first.base_url, second.base_url)}
                    for s in started]
            done = await asyncio.gather(*(_finished(http, s, timeout=150) for s in urls))
        for body in done:
            assert body["runtimeStatus"] == "Completed", body
            assert body["output"] == [0, 1, 2, 3, 4, 5]  # every step once in the result, in order
            assert body["customStatus"] == {"done": 6}
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
        if second is not None:
            assert second.stop() == 0, second.output()[-4000:]


def test_the_test_venv_runs_python_313_with_the_2x_sdk(python313: Path) -> None:
    probe = "import sys; from importlib.metadata import version; print(sys.version_info[:2], version(sys.argv[1]))"
    out = subprocess.run([str(python313), "-c", probe, "azure-functions-durable"], capture_output=True, text=True,
                         check=True, env=functions2x_env()).stdout.split()
    assert out[:2] == ["(3,", "13)"] and out[2].startswith("2."), out
