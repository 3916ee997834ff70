"""An incoming ``traceparent`` parents ``create_orchestration`` for an azure-functions-durable 2.x app.

The app (examples/functions_v2x_app) runs under ``durable-azstorage --otel run`` in the Python 3.13
venv of :mod:`tests.functions2x_env`, with the SDK's console span exporter. While its HTTP starter
runs, the request's context is current; the 2.x client (which emits no span of its own) sends it as
``CreateInstanceRequest.parentTraceContext`` over gRPC to the host's in-process client endpoint,
and the host's ``create_orchestration`` span is its child — so the orchestration and its
activities join the caller's trace. Both the async client and the sync one (a plain function in
the thread pool) are covered, and a start without ``traceparent`` stays a root.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_functions_v2x_app import HostProcess, _finished, _free_port, _wait_up
from tests.e2e.test_tracing_kill9 import _console_spans
from tests.functions2x_env import APP, REPO, ensure_functions2x_python, functions2x_env
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def traced_host(storage_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    python = ensure_functions2x_python()
    folder = tmp_path_factory.mktemp("v2x-otel") / "app"
    shutil.copytree(APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    host_json = json.loads((folder / "host.json").read_text())
    host_json["extensions"]["durableTask"].setdefault("storageProvider", {})["maxQueuePollingInterval"] = "00:00:01"
    (folder / "host.json").write_text(json.dumps(host_json, indent=2))
    port, hub = _free_port(), "v2xotel" + uuid.uuid4().hex[:12]
    log_path = tmp_path_factory.mktemp("logs") / "host.log"
    log = log_path.open("a")
    env = functions2x_env({"AzureWebJobsStorage": storage_connection_string, "OTEL_TRACES_EXPORTER": "console",
                           "OTEL_SERVICE_NAME": "functions-v2x"})
    proc = subprocess.Popen(
        [str(python), "-m", "durable_azstorage.cli", "--otel", "run", str(folder), "--port", str(port),
         "--task-hub-name", hub],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = HostProcess(proc, f"http://127.0.0.1:{port}", log_path, log)
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"exit code {code} after SIGTERM:\n{running.output()[-4000:]}"


@pytest.fixture
async def http(traced_host: HostProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await _wait_up(traced_host, session)
        yield session


async def _start(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with http.post(url, json=["Lima", "Oslo"], headers=headers) as response:
        assert response.status == 202, await response.text()
        body: dict[str, Any] = await response.json()
    done = await _finished(http, body)
    assert done["runtimeStatus"] == "Completed" and done["output"] == ["Hello Lima!", "Hello Oslo!"]
    return body


def _of_instance(host: HostProcess, instance_id: str) -> list[dict[str, Any]]:
    spans = _console_spans(host.output())
    return [s for s in spans if (s.get("attributes") or {}).get("durabletask.task.instance_id") == instance_id]


@pytest.mark.parametrize("route", ["orchestrators/hello_sequence", "sync/orchestrators/hello_sequence"])
async def test_the_request_traceparent_parents_create_orchestration(
    traced_host: HostProcess, http: aiohttp.ClientSession, route: str
) -> None:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-01"
    started = await _start(http, f"{traced_host.base_url}/api/{route}", {"traceparent": traceparent})

    def named(name: str) -> list[dict[str, Any]]:
        return [s for s in _of_instance(traced_host, started["id"]) if s["name"] == name]

    await eventually(lambda: len(named("orchestration:hello_sequence")) == 1, timeout=30,
                     message="orchestration span exported")
    (create,) = named("create_orchestration:hello_sequence")
    assert create["kind"] == "SpanKind.PRODUCER"
    assert create["context"]["trace_id"] == f"0x{trace_id:032x}", create
    assert create["parent_id"] == f"0x{span_id:016x}", create  # the HTTP caller's span
    (orchestration,) = named("orchestration:hello_sequence")
    assert orchestration["context"]["trace_id"] == f"0x{trace_id:032x}"
    assert orchestration["parent_id"] == create["context"]["span_id"]
    hellos = named("activity:say_hello")
    assert all(a["context"]["trace_id"] == f"0x{trace_id:032x}" for a in hellos)
    runs = [a for a in hellos if a["kind"] == "SpanKind.SERVER"]
    calls = [a for a in hellos if a["kind"] == "SpanKind.CLIENT"]  # the SDK's, through the sidecar
    assert len(runs) == 2 and len(calls) == 2, [(a["name"], a["kind"]) for a in hellos]
    assert {a["parent_id"] for a in runs} == {c["context"]["span_id"] for c in calls}
    assert {c["parent_id"] for c in calls} == {orchestration["context"]["span_id"]}


async def test_without_traceparent_create_orchestration_is_a_root(
    traced_host: HostProcess, http: aiohttp.ClientSession
) -> None:
    started = await _start(http, f"{traced_host.base_url}/api/orchestrators/hello_sequence", {})

    def creates() -> list[dict[str, Any]]:
        spans = _of_instance(traced_host, started["id"])
        return [s for s in spans if s["name"] == "create_orchestration:hello_sequence"]

    await eventually(lambda: len(creates()) == 1, timeout=30, message="create span exported")
    assert creates()[0]["parent_id"] is None
