"""Issue 14 defect 4: a worker whose partition count differs from the hub's fails fast, one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import ConfigurationError
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.worker import Worker

pytestmark = pytest.mark.e2e


def test_worker_with_another_partition_count_stops_with_one_line(storage_connection_string: str) -> None:
    hub = "p" + uuid.uuid4().hex[:12]
    account = StorageAccount.from_connection_string(storage_connection_string)
    asyncio.run(TaskHubResources(account, TaskHubNames(hub, 4)).create())
    env = {**os.environ, "AzureWebJobsStorage": storage_connection_string}
    proc = subprocess.run(
        [sys.executable, "-m", "durable_azstorage.cli", "worker", "--app", "tests.e2e.apps:register",
         "--task-hub-name", hub, "--partition-count", "2"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "has 4 partitions" in errors[0] and "--partition-count 4" in errors[0]

    async def rows_untouched() -> int | None:
        async with TaskHubStorage(account, TaskHubNames(hub, 4)) as storage:
            return await storage.stored_partition_count()

    assert asyncio.run(rows_untouched()) == 4


async def test_worker_start_raises_configuration_error(storage_account: StorageAccount, task_hub_name: str) -> None:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name, 2)).create()
    worker = Worker(storage_account, WorkerSettings(task_hub_name=task_hub_name, partition_count=4))
    with pytest.raises(ConfigurationError, match="has 2 partitions"):
        await worker.start()
    await worker.stop()  # nothing started: stop is a no-op
