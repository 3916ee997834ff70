"""1,000 signals to one entity from many orchestrations, with a worker killed -9 mid-way.

Two worker processes (the real CLI) share the hub; one is killed while signals are in flight.
The final count must be exact: a request re-sent by a re-run episode or re-delivered after a
crash is dropped by the entity's message sorter (replay-deterministic labels, see
docs/entities.md), and nothing is lost because every step is checkpointed in the DTAS order.
Also used as the worker app: ``--app tests.e2e.test_entities_kill9:register``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from durabletask import entities, task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.storage import TaskHubResources
from tests.helpers import eventually

ORCHESTRATIONS = 200
SIGNALS_EACH = 5  # 200 x 5 = 1,000 signals


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def get(self) -> int:
        value: int = self.get_state(int, 0)
        return value


def add_many(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    counter = entities.EntityInstanceId("counter", "shared")
    for _ in range(count // 2):
        ctx.signal_entity(counter, "add", 1)
    yield ctx.create_timer(ctx.current_utc_datetime)  # the rest in a second episode: spread in time
    for _ in range(count - count // 2):
        ctx.signal_entity(counter, "add", 1)
    return count


def register(worker: Any) -> None:
    worker.add_orchestrator(add_many)
    worker.add_entity(Counter)


async def _count(client: TaskHubClient) -> int:
    metadata = await client.get_entity("counter", key="shared")
    return 0 if metadata is None else int(metadata.state_value())


async def _completed(client: TaskHubClient, ids: list[str]) -> int:
    states = await asyncio.gather(*(client.get_orchestration_state(i, fetch_payloads=False) for i in ids))
    return sum(1 for s in states if s is not None and s.runtime_status == OrchestrationStatus.Completed)


async def test_thousand_signals_exact_count_across_kill9(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> None:
    from tests.e2e.test_multi_worker import owners

    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    workers: list[Any] = []
    client = await TaskHubClient.open(storage_account, task_hub_name)
    tables = storage_account.table_service()
    partitions = tables.get_table_client(f"{task_hub_name}Partitions")
    try:
        victim = _spawn(storage_connection_string, task_hub_name, tmp_path, "w1", workers)
        _spawn(storage_connection_string, task_hub_name, tmp_path, "w2", workers)

        async def balanced() -> bool:
            counts = await owners(partitions)
            return counts.get("w1") == 2 and counts.get("w2") == 2

        await eventually(balanced, timeout=60, message="two workers own two partitions each")
        started = time.monotonic()
        ids = list(
            await asyncio.gather(
                *(client.schedule_new_orchestration("add_many", input=SIGNALS_EACH) for _ in range(ORCHESTRATIONS))
            )
        )

        async def some_applied() -> bool:
            return await _count(client) >= 150

        await eventually(some_applied, timeout=60, interval=0.1, message="150 signals applied")
        before_kill = await _count(client)
        victim.kill9()
        killed_at = time.monotonic()

        async def all_done() -> bool:
            return await _completed(client, ids) == ORCHESTRATIONS

        await eventually(all_done, timeout=120, interval=0.5, message="all orchestrations completed")

        async def exact() -> bool:
            return await _count(client) >= ORCHESTRATIONS * SIGNALS_EACH

        await eventually(exact, timeout=60, interval=0.5, message="all signals applied")
        final = await _count(client)
        print(
            f"\n{ORCHESTRATIONS * SIGNALS_EACH} signals: {before_kill} applied at the kill, "
            f"final {final}, {time.monotonic() - started:.1f}s in all, {time.monotonic() - killed_at:.1f}s after kill"
        )
        assert final == ORCHESTRATIONS * SIGNALS_EACH
        metadata = await client.get_entity("counter", key="shared")
        assert metadata is not None and metadata.backlog_queue_size == 0 and metadata.locked_by is None
    finally:
        for worker in workers:
            worker.stop()
        await client.close()
        await tables.close()
        print(f"worker logs in {tmp_path}")


def _spawn(connection: str, hub: str, log_dir: Path, name: str, workers: list[Any]) -> Any:
    """A worker process (as in test_multi_worker) running this module's app."""
    import os
    import subprocess
    import sys

    from tests.e2e.test_multi_worker import REPO, VISIBILITY_SECONDS, WorkerProcess

    worker = WorkerProcess.__new__(WorkerProcess)
    worker.name = name
    worker._log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
    env = {**os.environ, "E2E_WORKER": name, "PYTHONPATH": str(REPO)}
    worker.proc = subprocess.Popen(
        [
            sys.executable, "-m", "durable_azstorage.cli", "worker",
            "--app", "tests.e2e.test_entities_kill9:register",
            "--connection", connection,
            "--task-hub-name", hub,
            "--worker-id", name,
            "--max-polling-interval", "1",
            "--visibility-timeout", str(VISIBILITY_SECONDS),
            "--lease-interval", "10",
        ],
        cwd=REPO, env=env, stdout=worker._log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    workers.append(worker)
    return worker
