"""Entity verbs of the CLI (a real subprocess) against a worker running in the test process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.integration.test_entities import Counter

pytestmark = pytest.mark.e2e


async def _cli(conn: str, hub: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AzureWebJobsStorage": conn}
    command = [sys.executable, "-m", "durable_azstorage.cli", *args, "--task-hub-name", hub]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=60, check=False
    )


async def _json(conn: str, hub: str, *args: str) -> Any:
    proc = await _cli(conn, hub, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_entity_verbs(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str
) -> None:
    conn, hub = storage_connection_string, task_hub_name
    settings = WorkerSettings(
        task_hub_name=hub, max_queue_polling_interval=timedelta(seconds=1), lease_acquire_interval=timedelta(seconds=2)
    )
    worker = Worker(storage_account, settings)
    worker.add_entity(Counter)
    async with worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        missing = await _cli(conn, hub, "get-entity", "--entity-name", "counter", "--entity-key", "cli")
        assert missing.returncode == 1 and "does not exist" in missing.stdout
        sent = await _json(
            conn, hub, "signal-entity", "--entity-name", "Counter", "--entity-key", "cli", "--op", "add", "--input", "4"
        )
        assert sent["entity"] == "@counter@cli" and sent["requestId"]

        async def four() -> bool:
            proc = await _cli(conn, hub, "get-entity", "--entity-name", "counter", "--entity-key", "cli")
            return proc.returncode == 0 and proc.stdout.strip() == "4"

        await eventually(four, timeout=60, interval=0.5, message="state 4 via the CLI")
        listed = await _json(conn, hub, "list-entities", "--entity-name", "counter")
        assert [(e["entityId"]["key"], e["state"]) for e in listed["entities"]] == [("cli", 4)]
        cleaned = await _json(conn, hub, "clean-entity-storage")
        assert cleaned == {"emptyEntitiesRemoved": 0, "orphanedLocksReleased": 0}
