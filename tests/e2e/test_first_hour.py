"""The first hour, as a new user meets it through the CLI and HTTP (issue 15).

Statuses by name (Running is 0), one default hub, a missing hub named, inputs checked at the
door, one-line start-up failures (taken port, unreachable endpoint, wrong key) that leave
nothing started or held.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import DEFAULT_TASK_HUB_NAME, WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WRONG_KEY = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk="


def _env(conn: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "DURABLE_TASK_HUB")}
    if conn is not None:
        env["AzureWebJobsStorage"] = conn
    env["PYTHONPATH"] = str(REPO)
    return env


def cli(conn: str | None, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", *args],
        capture_output=True, text=True, env=_env(conn), timeout=timeout, check=False, cwd=REPO,
    )


async def acli(conn: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, conn, *args)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The failure is exactly one ``error:`` line on stderr, no traceback, no session noise."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Unclosed" not in proc.stderr, proc.stderr
    return errors[0]


def wait_for_approval(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    approved = yield ctx.wait_for_external_event("approve")
    return f"approved by {approved}"


@pytest.fixture
async def worker(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[Worker]:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=0.5))
    host = Worker(storage_account, settings)
    host.add_orchestrator(wait_for_approval)
    async with host:
        yield host


# ------------------------------------------------------------------------------ 1. statuses


def test_running_is_not_falsy() -> None:
    assert OrchestrationStatus.Running == 0
    assert bool(OrchestrationStatus.Running)  # `if status:` must not mean "missing"


async def test_running_instance_shows_running_everywhere(
    worker: Worker, storage_connection_string: str, storage_account: StorageAccount, task_hub_name: str
) -> None:
    conn, hub = storage_connection_string, task_hub_name
    started = await acli(conn, "start-new", "--function-name", "wait_for_approval", "--id", "one",
                         "--task-hub-name", hub)
    assert started.returncode == 0, started.stderr
    assert f"using task hub {hub} in storage account" in started.stderr  # says where, at start
    async with await TaskHubClient.open(storage_account, hub) as client:
        async def running() -> bool:
            state = await client.get_orchestration_state("one")
            return state is not None and state.runtime_status is OrchestrationStatus.Running
        await eventually(running, timeout=30, message="instance Running")

    table = await acli(conn, "get-instances", "--task-hub-name", hub)
    row = next(line for line in table.stdout.splitlines() if line.startswith("one "))
    assert "Running" in row and "?" not in row, table.stdout
    status = await acli(conn, "get-runtime-status", "--id", "one", "--json", "--task-hub-name", hub)
    assert json.loads(status.stdout)["runtimeStatus"] == "Running"
    again = await acli(conn, "start-new", "--function-name", "wait_for_approval", "--id", "one",
                       "--task-hub-name", hub)
    assert "(status Running)" in one_line_error(again)
    resumed = await acli(conn, "resume", "--id", "one", "--task-hub-name", hub)
    assert "is Running; only suspended ones can be resumed" in one_line_error(resumed)
    raised = await acli(conn, "raise-event", "--id", "one", "--event-name", "approve", "--event-data", '"ann"',
                        "--task-hub-name", hub)
    assert raised.returncode == 0, raised.stderr
    waited = await acli(conn, "wait", "--id", "one", "--timeout", "30", "--task-hub-name", hub)
    assert waited.returncode == 0, waited.stderr
    assert "is Completed. Output: \"approved by ann\"" in waited.stdout


# ------------------------------------------------------------------------------ 3. one hub


def test_one_default_hub_everywhere() -> None:
    assert WorkerSettings().task_hub_name == DEFAULT_TASK_HUB_NAME == "TestHubName"
    for verb in ("worker", "start-new", "get-instances", "serve", "demo"):
        text = cli(None, verb, "--help").stdout
        assert "TestHubName" in text, (verb, text)
    assert "DefaultTaskHub" not in cli(None, "worker", "--help").stdout


def test_read_on_missing_hub_names_hub_and_account(storage_connection_string: str) -> None:
    hub = "missing" + uuid.uuid4().hex[:8]
    for args in (("get-instances",), ("get-runtime-status", "--id", "x"), ("wait", "--id", "x"),
                 ("terminate", "--id", "x")):
        line = one_line_error(cli(storage_connection_string, *args, "--task-hub-name", hub))
        assert f"task hub {hub} does not exist in account devstoreaccount1" in line, line


def test_start_into_unserved_hub_says_so(storage_connection_string: str) -> None:
    hub = "fresh" + uuid.uuid4().hex[:8]
    proc = cli(storage_connection_string, "start-new", "--function-name", "hello", "--task-hub-name", hub)
    assert proc.returncode == 0, proc.stderr
    assert f"created task hub {hub}" in proc.stderr
    assert f"no worker has ever served task hub {hub}" in proc.stderr


# ------------------------------------------------------------------------------ 7. inputs


def test_inputs_checked_at_the_door(storage_connection_string: str, task_hub_name: str, tmp_path: Path) -> None:
    conn, hub = storage_connection_string, task_hub_name
    bad = one_line_error(cli(conn, "start-new", "--function-name", "f", "--input", "hello", "--task-hub-name", hub))
    assert "--input" in bad and "not valid JSON" in bad and "--raw-input" in bad
    missing = one_line_error(cli(conn, "start-new", "--function-name", "f", "--input", "@nope.json",
                                 "--task-hub-name", hub))
    assert "cannot read nope.json" in missing
    raw = cli(conn, "start-new", "--function-name", "f", "--id", "r", "--input", "hello", "--raw-input",
              "--task-hub-name", hub, "--json")
    assert raw.returncode == 0, raw.stderr
    (tmp_path / "in.json").write_text('{"a": [1, 2]}')
    from_file = cli(conn, "start-new", "--function-name", "f", "--id", "file", "--input", f"@{tmp_path / 'in.json'}",
                    "--task-hub-name", hub)
    assert from_file.returncode == 0, from_file.stderr
    status = json.loads(cli(conn, "get-runtime-status", "--id", "r", "--show-input", "--json",
                            "--task-hub-name", hub).stdout)
    assert status["input"] == "hello"
    created = status["createdTime"]  # the CLI's own format, ...Z
    assert created.endswith("Z")
    since = json.loads(cli(conn, "get-instances", "--created-after", "2000-01-01T00:00:00Z", "--created-before",
                           "2999-01-01T00:00:00Z", "--all-pages", "--json", "--task-hub-name", hub).stdout)
    assert {i["instanceId"] for i in since["instances"]} == {"r", "file"}
    bad_date = one_line_error(cli(conn, "get-instances", "--created-after", "yesterday", "--task-hub-name", hub))
    assert "is not a date/time" in bad_date


def test_wait_errors_are_one_line_exit_2(storage_connection_string: str, task_hub_name: str) -> None:
    conn, hub = storage_connection_string, task_hub_name
    cli(conn, "start-new", "--function-name", "nobody_runs_me", "--id", "p", "--task-hub-name", hub)
    timed_out = one_line_error(cli(conn, "wait", "--id", "p", "--timeout", "0.5", "--task-hub-name", hub))
    assert "did not finish within 0.5s (it is Pending)" in timed_out
    usage = one_line_error(cli(conn, "wait", "--task-hub-name", hub))
    assert "Missing option '--id'" in usage and "--help" in usage
    negative = one_line_error(cli(conn, "wait", "--id", "p", "--timeout", "-1", "--task-hub-name", hub))
    assert "--timeout" in negative


# ------------------------------------------------------------------------------ 5. start-up


def test_taken_port_is_one_line_and_nothing_started(storage_connection_string: str, task_hub_name: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        app = REPO / "tests" / "integration" / "functions_apps"
        apps = sorted(p for p in app.iterdir() if (p / "host.json").exists()) if app.is_dir() else []
        target = str(apps[0]) if apps else str(REPO / "examples" / "functions_app")
        for args in (("run", target, "--port", str(port), "--task-hub-name", task_hub_name),
                     ("serve", "--port", str(port), "--task-hub-name", task_hub_name)):
            started = time.monotonic()
            line = one_line_error(cli(storage_connection_string, *args))
            assert f"port {port} is in use; pass --port" in line, line
            assert time.monotonic() - started < 30
    # Nothing was started: the hub was not even created, so no lease can be held.
    gone = cli(storage_connection_string, "get-instances", "--task-hub-name", task_hub_name)
    assert "does not exist" in one_line_error(gone)


def test_unreachable_endpoint_retries_with_progress_then_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed below: nothing listens there any more
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={WRONG_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/"
            f"devstoreaccount1;TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    started = time.monotonic()
    proc = cli(conn, "get-instances")
    elapsed = time.monotonic() - started
    line = one_line_error(proc)
    assert f"cannot reach table endpoint http://127.0.0.1:{port}" in line and "after 8 attempts" in line
    assert "durable-azstorage azurite" in line
    assert "retrying (3/7)" in proc.stderr  # progress while it retries
    assert elapsed < 40, elapsed


def test_wrong_account_key_says_it_is_the_key(storage_connection_string: str) -> None:
    parts = dict(p.split("=", 1) for p in storage_connection_string.rstrip(";").split(";"))
    parts["AccountKey"] = WRONG_KEY
    wrong = ";".join(f"{k}={v}" for k, v in parts.items())
    line = one_line_error(cli(wrong, "get-instances"))
    assert "refused our credentials" in line and "AccountKey" in line, line


# ------------------------------------------------------------------------------ 6. host story

APP_SOURCE = '''
import logging

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("say", context.get_input()))


@app.orchestration_trigger(context_name="context")
def explode(context: df.DurableOrchestrationContext):
    raise ValueError("boom")


@app.activity_trigger(input_name="name")
def say(name: str) -> str:
    logging.info("app says hi to %s", name)
    return f"hi {name}"
'''


class HostProcess:
    """``durable-azstorage <args>`` with stderr read line by line (to learn the port, then the story)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, conn: str, *args: str) -> HostProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "durable_azstorage.cli", *args, env=_env(conn), cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def text(self) -> str:
        return "\n".join(self.lines)

    async def url(self, marker: str) -> str:
        async def found() -> str | None:
            if self.proc.returncode is not None:
                raise AssertionError(f"exited {self.proc.returncode}:\n{self.text()}")
            line = next((x for x in self.lines if marker in x), None)
            return line.split(marker, 1)[1].split()[0] if line else None
        return await eventually(found, timeout=60, interval=0.1, message=f"{marker!r} printed")

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.terminate()
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await self._reader
        return code


async def _finished(http: Any, url: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        async with http.get(url) as response:
            body: dict[str, Any] = await response.json()
            return body if body["runtimeStatus"] in ("Completed", "Failed") else None
    return await eventually(done, timeout=60, interval=0.2, message="orchestration finished")


async def test_run_tells_what_happens_and_refuses_unknown_orchestrators(
    storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> None:
    import aiohttp

    (tmp_path / "function_app.py").write_text(APP_SOURCE)
    (tmp_path / "host.json").write_text('{"version": "2.0", "extensions": {"durableTask": {"storageProvider": '
                                         '{"maxQueuePollingInterval": "00:00:01"}}}}')
    host = await HostProcess.start(storage_connection_string, "run", str(tmp_path), "--port", "0",
                                   "--task-hub-name", task_hub_name)
    try:
        api = await host.url("Management API: ")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            async with http.post(f"{api}/orchestrators/nope") as response:
                assert response.status == 400
                message = (await response.json())["Message"]
                assert "'nope' doesn't exist" in message and "'explode', 'greet'" in message, message
            async with http.post(f"{api}/orchestrators/greet", json="Ann") as response:
                assert response.status == 202, await response.text()
                greet = await response.json()
            async with http.post(f"{api}/orchestrators/explode") as response:
                explode = await response.json()
            assert (await _finished(http, greet["statusQueryGetUri"]))["output"] == "hi Ann"
            assert (await _finished(http, explode["statusQueryGetUri"]))["runtimeStatus"] == "Failed"

        def told() -> bool:
            text = host.text()
            return "Orchestration 'greet' completed" in text and "Orchestration 'explode' failed" in text
        await eventually(told, timeout=30, message="completion lines")
    finally:
        code = await host.stop()
    text = host.text()
    assert code == 0, text
    assert f"Functions host on task hub {task_hub_name} in storage account devstoreaccount1" in text
    assert f"Orchestration 'greet' started (instance {greet['id']})" in text
    assert "Executing 'Functions.greet' (Reason='OrchestrationTrigger" in text
    assert f"Executing 'Functions.say' (Reason='Activity scheduled by instance {greet['id']}', Id=" in text
    assert "Executed 'Functions.say' (Succeeded, Id=" in text and "Duration=" in text
    assert f"Orchestration 'greet' completed (instance {greet['id']})" in text
    assert f"Orchestration 'explode' failed (instance {explode['id']})" in text and "boom" in text
    assert "app says hi to Ann" in text  # the app's own logging, at INFO
    assert "Traceback" not in text and "Unclosed" not in text, text


async def test_serve_creates_a_missing_hub(storage_connection_string: str, task_hub_name: str) -> None:
    import aiohttp

    host = await HostProcess.start(storage_connection_string, "serve", "--port", "0", "--task-hub-name",
                                   task_hub_name)
    try:
        api = await host.url(f"serving {task_hub_name} on ")
        assert f"created task hub {task_hub_name}" in host.text()
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
            http.post(f"{api}/orchestrators/anything") as response,
        ):
            assert response.status == 202, await response.text()
    finally:
        assert await host.stop() == 0, host.text()


def test_verbose_shows_fields_and_quiet_shows_nothing(storage_connection_string: str, task_hub_name: str) -> None:
    conn, hub = storage_connection_string, task_hub_name
    loud = cli(conn, "-v", "start-new", "--function-name", "f", "--id", "v1", "--task-hub-name", hub)
    assert loud.returncode == 0, loud.stderr
    assert "client.orchestration_scheduled" in loud.stderr and "instance_id=v1" in loud.stderr, loud.stderr
    quiet = cli(conn, "-q", "start-new", "--function-name", "f", "--id", "q1", "--task-hub-name", hub)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "Instance ID: 'q1'" in quiet.stdout


# ------------------------------------------------------------------------------ 8. idle start


def test_local_emulator_gets_a_short_polling_ceiling(storage_connection_string: str) -> None:
    from durable_azstorage.settings import LOCAL_MAX_QUEUE_POLLING_INTERVAL

    local = StorageAccount.from_connection_string("UseDevelopmentStorage=true")
    remote = StorageAccount.from_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=someaccount;AccountKey={WRONG_KEY};EndpointSuffix=core.windows.net")
    assert local.is_local and not remote.is_local
    assert WorkerSettings.from_host_json({}, local_account=True).max_queue_polling_interval == \
        LOCAL_MAX_QUEUE_POLLING_INTERVAL
    assert WorkerSettings.from_host_json({}).max_queue_polling_interval == timedelta(seconds=30)
    configured = {"extensions": {"durableTask": {"storageProvider": {"maxQueuePollingInterval": "00:00:07"}}}}
    assert WorkerSettings.from_host_json(configured, local_account=True).max_queue_polling_interval == \
        timedelta(seconds=7)


async def test_idle_worker_starts_work_from_another_process_promptly(
    storage_connection_string: str, task_hub_name: str
) -> None:
    """``worker`` on Azurite says its idle ceiling (2 s) and picks up a CLI start-new after idling."""
    host = await HostProcess.start(storage_connection_string, "worker", "--app", "tests.e2e.apps:register",
                                   "--task-hub-name", task_hub_name)
    try:
        await host.url("polls at most every ")
        assert "polls at most every 2s when idle" in host.text()
        started = await acli(storage_connection_string, "start-new", "--function-name", "hello_sequence", "--id",
                             "idle1", "--task-hub-name", task_hub_name)
        assert started.returncode == 0, started.stderr
        waited = await acli(storage_connection_string, "wait", "--id", "idle1", "--timeout", "60",
                            "--task-hub-name", task_hub_name)
        assert waited.returncode == 0 and "is Completed" in waited.stdout, (waited.stdout, waited.stderr)
    finally:
        assert await host.stop() == 0, host.text()


# ------------------------------------------------------------------------------ 4. azurite


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class EmulatorProcess:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "durable_azstorage.cli", "azurite", "--in-memory", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(None), cwd=REPO,
        )
        self.out: list[str] = []

    def read_until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line.rstrip())
            if marker in line:
                return line.strip()
        errors = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"no {marker!r}; stdout {self.out}; stderr {errors}")


def test_azurite_auto_ports_print_the_export_line_and_die_with_the_cli() -> None:
    emulator = EmulatorProcess("--ports", "auto")
    try:
        export = emulator.read_until("export AzureWebJobsStorage=")
        assert "BlobEndpoint=http://127.0.0.1:" in export and "AccountName=devstoreaccount1" in export
        node = _children(emulator.proc.pid)
        assert node, "the emulator runs as a child process"
    finally:
        emulator.proc.kill()  # SIGKILL: no chance to clean up
        emulator.proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in node):
        assert time.monotonic() < deadline, f"node process {node} outlived a SIGKILLed CLI"
        time.sleep(0.1)


def test_azurite_standard_ports_or_a_clear_message() -> None:
    from durable_azstorage.azurite import STANDARD_PORTS, ports_in_use

    if ports_in_use("127.0.0.1", STANDARD_PORTS):  # someone runs an emulator here: we must say so
        line = one_line_error(cli(None, "azurite", "--in-memory"))
        assert "in use" in line and "UseDevelopmentStorage=true" in line and "--ports auto" in line
        return
    emulator = EmulatorProcess()
    try:
        assert emulator.read_until("export ") == "export AzureWebJobsStorage=UseDevelopmentStorage=true"
        assert "blob http://127.0.0.1:10000" in emulator.out[0], emulator.out
        second = one_line_error(cli(None, "azurite", "--in-memory"))  # the ports are ours now
        assert "ports 10000, 10001, 10002 on 127.0.0.1 are in use" in second and "--ports auto" in second
    finally:
        emulator.proc.terminate()
        assert emulator.proc.wait(timeout=20) == 0


def test_azurite_taken_explicit_port_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = one_line_error(cli(None, "azurite", "--in-memory", "--ports", f"{port},0,0"))
    assert f"port {port} on 127.0.0.1 is in use" in line and "--ports" in line
    assert "use standard, auto or BLOB,QUEUE,TABLE" in one_line_error(cli(None, "azurite", "--ports", "x"))


# ------------------------------------------------------------------------------ 9. demo


def test_demo_shows_statuses_and_ends_with_three_next_commands(storage_connection_string: str) -> None:
    proc = cli(None, "demo", "--connection", storage_connection_string, "--task-hub-name",
               "demo" + uuid.uuid4().hex[:8], timeout=240)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count(" Completed ") == 2 and "?" not in out.split("Orchestrations:")[1].split("Tables")[0]
    tail = out[out.index("Next, three commands to try"):]
    for command in ("1. durable-azstorage azurite", "2. durable-azstorage run examples/functions_app",
                    "3. curl -X POST localhost:7071/api/orchestrators/hello_sequence"):
        assert command in tail, tail


def test_every_verb_says_where_it_works(storage_connection_string: str) -> None:
    hub = "gone" + uuid.uuid4().hex[:8]
    for args in (("delete-task-hub", "--yes"), ("poison", "list"), ("get-instances",)):
        proc = cli(storage_connection_string, *args, "--task-hub-name", hub)
        assert proc.stderr.startswith(f"using task hub {hub} in storage account devstoreaccount1 (http://"), args
    gone = cli(storage_connection_string, "delete-task-hub", "--yes", "--task-hub-name", hub)
    assert gone.returncode == 0 and f"Task hub '{hub}' does not exist in account devstoreaccount1" in gone.stdout
