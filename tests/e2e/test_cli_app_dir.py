"""CLI defaults from a Functions app folder (host.json, local.settings.json) and ``wait``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.e2e import apps
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def _env_without_storage() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobsStorage", "DURABLE_TASK_HUB"))}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def _app_dir(tmp_path: Path, host: Any, values: dict[str, str] | None = None) -> Path:
    (tmp_path / "host.json").write_text(json.dumps(host) if not isinstance(host, str) else host)
    if values is not None:
        (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return tmp_path


def _host(hub: str, **provider: Any) -> dict[str, Any]:
    return {"version": "2.0", "extensions": {"durableTask": {"hubName": hub, "storageProvider": provider}}}


async def test_hub_and_connection_come_from_the_app_folder(
    storage_connection_string: str, storage_account: StorageAccount, tmp_path: Path
) -> None:
    hub = "app" + uuid.uuid4().hex[:10]
    folder = _app_dir(
        tmp_path, _host("%MyTaskHub%", connectionName="MyStorage"),
        {"MyTaskHub": hub, "MyStorage": storage_connection_string},
    )
    env = _env_without_storage()
    proc = _cli("start-new", "--function-name", "hello_sequence", "--id", "from-app", "--app-dir", str(folder),
                "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    async with await TaskHubClient.open(storage_account, hub) as client:
        state = await client.get_orchestration_state("from-app")
    assert state is not None and state.name == "hello_sequence"


def test_environment_wins_over_local_settings(storage_connection_string: str, tmp_path: Path) -> None:
    hub = "env" + uuid.uuid4().hex[:10]
    folder = _app_dir(tmp_path, _host("%MyTaskHub%"), {"MyTaskHub": "NotThisHub", "AzureWebJobsStorage": "bogus"})
    env = {**_env_without_storage(), "MyTaskHub": hub, "AzureWebJobsStorage": storage_connection_string}
    started = _cli("start-new", "--function-name", "x", "--id", "i", "--app-dir", str(folder), "--json", env=env)
    assert started.returncode == 0, started.stderr
    env.pop("MyTaskHub")
    status = _cli("get-runtime-status", "--id", "i", "--task-hub-name", hub, "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["name"] == "x"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ('{"version": "2.0", "extensions": {', "host.json: invalid JSON at line 1"),
        ("[1, 2]", "host.json: the top level must be a JSON object"),
        (_host("h", type="Netherite"), "serves the Azure Storage provider only"),
        (_host("%Missing%"), "refers to app setting %Missing%"),
    ],
)
def test_broken_app_folder_is_one_clear_line(tmp_path: Path, host: Any, message: str) -> None:
    folder = _app_dir(tmp_path, host)
    env = {**_env_without_storage(), "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    proc = _cli("get-instances", "--app-dir", str(folder), env=env)
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


async def test_wait_reports_the_outcome(
    storage_connection_string: str, storage_account: StorageAccount, task_hub_name: str
) -> None:
    env = {**_env_without_storage(), "AzureWebJobsStorage": storage_connection_string}
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(storage_account, settings)
    apps.register(worker)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        done = await client.schedule_new_orchestration("hello_sequence", input=None)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        stuck = await client.schedule_new_orchestration("hello_sequence", start_at=later)

        finished = await asyncio.to_thread(
            _cli, "wait", "--id", done, "--timeout", "60", "--task-hub-name", task_hub_name, "--json", env=env
        )
        assert finished.returncode == 0, finished.stderr
        assert json.loads(finished.stdout)["runtimeStatus"] == "Completed"

        timed_out = await asyncio.to_thread(
            _cli, "wait", "--id", stuck, "--timeout", "0.5", "--task-hub-name", task_hub_name, env=env
        )
        # A timeout is an error like any other (one line, exit 2); exit 1 means "finished, not Completed".
        assert timed_out.returncode == 2 and "did not finish within 0.5s" in timed_out.stderr, timed_out.stderr

        missing = await asyncio.to_thread(
            _cli, "wait", "--id", "nope", "--task-hub-name", task_hub_name, env=env
        )
        assert missing.returncode == 2 and "no orchestration instance" in missing.stderr, missing.stderr
