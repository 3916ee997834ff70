"""Two sidecar *processes* on one task hub, one SIGKILLed mid-run: every instance completes once;
one stopped with SIGTERM hands its partitions over in seconds and exits cleanly.

Each sidecar is the real CLI (``python -m durable_azstorage.cli sidecar``) with its own
durabletask SDK worker (unchanged, in this test process) connected to it. Ownership is read
from the Partitions table, completions from the History table.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.storage import TaskHubResources
from tests.helpers import eventually
from tests.sidecar_support import sdk_worker

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 6.0
VISIBILITY_SECONDS = 12.0
INSTANCES = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SidecarProcess:
    def __init__(self, name: str, connection: str, hub: str, log_dir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self._log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "durable_azstorage.cli", "-v", "sidecar",
                "--port", str(self.port),
                "--connection", connection,
                "--task-hub-name", hub,
                "--partition-count", "4",
                "--worker-id", name,
                "--max-polling-interval", "1",
                "--visibility-timeout", str(VISIBILITY_SECONDS),
                "--lease-interval", str(LEASE_SECONDS),
            ],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        with grpc.insecure_channel(self.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=timeout)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def _registrar(worker_name: str) -> Any:
    def greet(ctx: task.ActivityContext, city: str) -> str:
        return f"Hello {city} from {worker_name}"

    def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
        out = []
        for city in ("Tokyo", "Seattle", "London", "Paris", "Oslo"):
            out.append((yield ctx.call_activity("greet", input=city)))
        return out

    def register(worker: Any) -> None:
        worker.add_orchestrator(hello_sequence)  # registered under the function names
        worker.add_activity(greet)

    return register


@pytest.fixture
def two_sidecars(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> Iterator[tuple[SidecarProcess, SidecarProcess]]:
    asyncio.run(TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create())
    with ExitStack() as stack:
        sidecars = [SidecarProcess(n, storage_connection_string, task_hub_name, tmp_path) for n in ("s1", "s2")]
        for s in sidecars:
            stack.callback(s.stop)
        for s in sidecars:
            s.wait_ready()
            stack.enter_context(sdk_worker(s.address, _registrar(s.name)))
        yield sidecars[0], sidecars[1]
        print(f"sidecar logs in {tmp_path}")


async def _owners(storage_account: StorageAccount, hub: str) -> Counter[str]:
    async with storage_account.table_service() as tables:
        table = tables.get_table_client(f"{hub}Partitions")
        rows = [e async for e in table.query_entities("PartitionKey eq ''")]
    return Counter(str(r.get("CurrentOwner") or "") for r in rows)


async def _completed(client: TaskHubClient, ids: list[str]) -> int:
    states = await asyncio.gather(*(client.get_orchestration_state(i, fetch_payloads=False) for i in ids))
    return sum(1 for s in states if s is not None and s.runtime_status == OrchestrationStatus.Completed)


def test_kill9_one_of_two_sidecars_every_instance_completes_once(
    two_sidecars: tuple[SidecarProcess, SidecarProcess], storage_account: StorageAccount, task_hub_name: str
) -> None:
    victim, survivor = two_sidecars
    sdk = dt_client.TaskHubGrpcClient(host_address=survivor.address)
    try:
        asyncio.run(_scenario(victim, survivor, sdk, storage_account, task_hub_name))
    finally:
        sdk.close()


async def _scenario(
    victim: SidecarProcess, survivor: SidecarProcess, sdk: Any, account: StorageAccount, hub: str
) -> None:
    async def balanced() -> bool:
        counts = await _owners(account, hub)
        return counts.get("s1") == 2 and counts.get("s2") == 2

    await eventually(balanced, timeout=90, interval=0.25, message="two sidecars own two partitions each")
    ids = [sdk.schedule_new_orchestration("hello_sequence") for _ in range(INSTANCES)]
    client = await TaskHubClient.open(account, hub)
    async with client:
        await eventually(lambda: _completed(client, ids), timeout=120, message="some orchestrations done")
        victim.kill9()
        killed_at = time.monotonic()

        async def survivor_owns_all() -> bool:
            return (await _owners(account, hub)).get("s2") == 4

        await eventually(survivor_owns_all, timeout=120, interval=0.25, message="survivor took all partitions")
        takeover = time.monotonic() - killed_at

        async def all_done() -> bool:
            return await _completed(client, ids) == INSTANCES

        await eventually(all_done, timeout=240, interval=0.5, message=f"all {INSTANCES} done")
        print(
            f"\nsidecar kill -9: partitions taken over after {takeover:.1f}s, "
            f"all {INSTANCES} done {time.monotonic() - killed_at:.1f}s after the kill"
        )
        outputs = [await client.get_orchestration_state(i) for i in ids]
    # None completed twice: exactly one ExecutionCompleted per instance in the History table.
    async with account.table_service() as tables:
        history = tables.get_table_client(f"{hub}History")
        completions: Counter[str] = Counter()
        async for row in history.query_entities("EventType eq 'ExecutionCompleted'", select=["PartitionKey"]):
            completions[str(row["PartitionKey"])] += 1
    assert set(completions) == set(ids)
    assert all(count == 1 for count in completions.values())
    results = [json.loads(s.output) for s in outputs if s is not None and s.output]
    assert len(results) == INSTANCES and all(len(r) == 5 for r in results)
    assert {line.rsplit(" ", 1)[-1] for r in results for line in r} == {"s1", "s2"}  # both worked before the kill


def test_sigterm_hands_partitions_over_and_loses_nothing(
    two_sidecars: tuple[SidecarProcess, SidecarProcess], storage_account: StorageAccount, task_hub_name: str
) -> None:
    leaving, staying = two_sidecars
    sdk = dt_client.TaskHubGrpcClient(host_address=staying.address)
    try:
        asyncio.run(_graceful(leaving, staying, sdk, storage_account, task_hub_name))
    finally:
        sdk.close()


async def _graceful(
    leaving: SidecarProcess, staying: SidecarProcess, sdk: Any, account: StorageAccount, hub: str
) -> None:
    async def balanced() -> bool:
        counts = await _owners(account, hub)
        return counts.get("s1") == 2 and counts.get("s2") == 2

    await eventually(balanced, timeout=90, interval=0.25, message="two sidecars own two partitions each")
    ids = [sdk.schedule_new_orchestration("hello_sequence") for _ in range(20)]
    leaving.proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()

    async def staying_owns_all() -> bool:
        return (await _owners(account, hub)).get("s2") == 4

    await eventually(staying_owns_all, timeout=60, interval=0.1, message="hand-over after SIGTERM")
    handover = time.monotonic() - stopped_at
    assert leaving.proc.wait(timeout=90) == 0  # a clean exit, nothing left holding a lease
    async with await TaskHubClient.open(account, hub) as client:

        async def all_done() -> bool:
            return await _completed(client, ids) == len(ids)

        await eventually(all_done, timeout=120, interval=0.5, message="all done after the hand-over")
    print(f"\nsidecar SIGTERM: partitions handed over in {handover:.1f}s")
