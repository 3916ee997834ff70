"""Several worker *processes* on one task hub: balance, kill -9 failover, graceful hand-over.

Workers run the real CLI (``python -m durable_azstorage.cli worker``) against the session's
Azurite; ownership is read from the Partitions table, completions from the History table.
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
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from azure.data.tables.aio import TableClient

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.storage import TaskHubResources
from tests.helpers import eventually

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 10.0
VISIBILITY_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    def __init__(self, name: str, connection: str, hub: str, log_dir: Path, *extra: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.health_port = free_port()
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "E2E_WORKER": name, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "durable_azstorage.cli", "worker",
                "--app", "tests.e2e.apps:register",
                "--connection", connection,
                "--task-hub-name", hub,
                "--worker-id", name,
                "--max-polling-interval", "1",
                "--visibility-timeout", str(VISIBILITY_SECONDS),
                "--lease-interval", str(LEASE_SECONDS),
                "--health-port", str(self.health_port),
                *extra,
            ],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def probe(self, path: str) -> tuple[int, dict[str, object]]:
        """GET /healthz or /readyz; (0, {}) when nothing listens (not started yet, or exited)."""
        try:
            url = f"http://127.0.0.1:{self.health_port}{path}"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status, await response.json()
        except aiohttp.ClientConnectionError:
            return 0, {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


Spawn = Callable[..., WorkerProcess]


@pytest.fixture
async def hub_setup(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str, tmp_path: Path
) -> AsyncIterator[tuple[Spawn, TaskHubClient, TableClient]]:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    workers: list[WorkerProcess] = []

    def spawn(name: str, *extra: str) -> WorkerProcess:
        worker = WorkerProcess(name, storage_connection_string, task_hub_name, tmp_path, *extra)
        workers.append(worker)
        return worker

    client = await TaskHubClient.open(storage_account, task_hub_name)
    tables = storage_account.table_service()
    partitions = tables.get_table_client(f"{task_hub_name}Partitions")
    try:
        yield spawn, client, partitions
    finally:
        for worker in workers:
            worker.stop()
        await client.close()
        await tables.close()
        print(f"worker logs in {tmp_path}")


async def owners(partitions: TableClient) -> Counter[str]:
    rows = [e async for e in partitions.query_entities("PartitionKey eq ''")]
    return Counter(str(r.get("CurrentOwner") or "") for r in rows)


async def completed_count(client: TaskHubClient, ids: list[str]) -> int:
    states = await asyncio.gather(*(client.get_orchestration_state(i, fetch_payloads=False) for i in ids))
    return sum(1 for s in states if s is not None and s.runtime_status == OrchestrationStatus.Completed)


async def test_kill9_one_of_two_workers_loses_nothing(
    hub_setup: tuple[Spawn, TaskHubClient, TableClient],
    storage_account: StorageAccount,
    task_hub_name: str,
) -> None:
    spawn, client, partitions = hub_setup
    victim, _survivor = spawn("w1"), spawn("w2")

    async def balanced() -> bool:
        counts = await owners(partitions)
        return counts.get("w1") == 2 and counts.get("w2") == 2

    await eventually(balanced, timeout=60, message="two workers own two partitions each")
    ids = await asyncio.gather(*(client.schedule_new_orchestration("hello_sequence") for _ in range(200)))
    await eventually(lambda: _at_least(client, list(ids), 20), timeout=120, message="20 orchestrations done")

    victim.kill9()
    killed_at = time.monotonic()

    async def survivor_owns_all() -> bool:
        return (await owners(partitions)).get("w2") == 4

    await eventually(survivor_owns_all, timeout=120, interval=0.25, message="survivor took all partitions")
    takeover = time.monotonic() - killed_at
    await eventually(lambda: _at_least(client, list(ids), 200), timeout=240, interval=0.5, message="all 200 done")
    all_done = time.monotonic() - killed_at
    print(f"\nkill -9 failover: partitions taken over after {takeover:.1f}s, all 200 done {all_done:.1f}s after kill")

    # None completed twice: exactly one ExecutionCompleted per instance in the History table.
    history = storage_account.table_service().get_table_client(f"{task_hub_name}History")
    async with history:
        completions: Counter[str] = Counter()
        async for row in history.query_entities("EventType eq 'ExecutionCompleted'", select=["PartitionKey"]):
            completions[str(row["PartitionKey"])] += 1
    assert set(completions) == set(ids)
    assert all(count == 1 for count in completions.values())
    outputs = [await client.get_orchestration_state(i) for i in ids]
    workers_seen = {line.rsplit(" ", 1)[-1] for s in outputs if s and s.output for line in json.loads(s.output)}
    assert workers_seen == {"w1", "w2"}  # both made progress before the kill


async def test_graceful_stop_hands_over_partitions(
    hub_setup: tuple[Spawn, TaskHubClient, TableClient],
) -> None:
    spawn, client, partitions = hub_setup
    stays, leaves = spawn("a"), spawn("b")

    async def balanced() -> bool:
        counts = await owners(partitions)
        return counts.get("a") == 2 and counts.get("b") == 2

    await eventually(balanced, timeout=60, message="balanced")
    leaves.terminate()
    stopped_at = time.monotonic()

    async def a_owns_all() -> bool:
        return (await owners(partitions)).get("a") == 4

    await eventually(a_owns_all, timeout=30, interval=0.1, message="hand-over after graceful stop")
    handover = time.monotonic() - stopped_at
    print(f"\ngraceful stop: partitions handed over in {handover:.1f}s")
    instance_id = await client.schedule_new_orchestration("hello_sequence")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed
    assert stays.proc.poll() is None


async def _at_least(client: TaskHubClient, ids: list[str], n: int) -> bool:
    return await completed_count(client, ids) >= n


async def test_sigterm_readiness_then_hand_over_then_exit_zero(
    hub_setup: tuple[Spawn, TaskHubClient, TableClient],
) -> None:
    """What a container platform sees on a rolling update or scale-in: probes, hand-off, exit code."""
    spawn, client, partitions = hub_setup
    stays, leaves = spawn("s1"), spawn("s2")
    for worker in (stays, leaves):
        assert (await worker.probe("/healthz"))[0] in (0, 200)  # 0: not listening yet

    async def both_ready_and_balanced() -> bool:
        ready = [await w.probe("/readyz") for w in (stays, leaves)]
        counts = await owners(partitions)
        return all(status == 200 for status, _ in ready) and counts.get("s1") == 2 and counts.get("s2") == 2

    await eventually(both_ready_and_balanced, timeout=60, message="both workers ready with two partitions each")
    status, body = await leaves.probe("/readyz")
    assert status == 200 and len(body["owned_partitions"]) == 2  # type: ignore[arg-type]
    # Work in flight while the worker leaves: nothing may be lost or stuck.
    ids = await asyncio.gather(*(client.schedule_new_orchestration("hello_sequence") for _ in range(40)))
    await eventually(lambda: _at_least(client, list(ids), 5), timeout=60, message="5 orchestrations done")

    leaves.terminate()
    stopped_at = time.monotonic()

    async def s1_owns_all() -> bool:
        return (await owners(partitions)).get("s1") == 4

    await eventually(s1_owns_all, timeout=30, interval=0.1, message="hand-over after SIGTERM")
    handover = time.monotonic() - stopped_at
    await eventually(lambda: leaves.proc.poll() is not None, timeout=60, message="the stopped worker exits")
    exited = time.monotonic() - stopped_at
    assert leaves.proc.returncode == 0
    log = leaves.log_path.read_text()
    assert "stopping: releasing partitions" in log
    assert (await leaves.probe("/readyz"))[0] == 0  # probes are gone with the process
    assert (await stays.probe("/readyz"))[0] == 200
    await eventually(lambda: _at_least(client, list(ids), 40), timeout=120, interval=0.5, message="all 40 done")
    print(f"\nSIGTERM: partitions handed over in {handover:.1f}s, process exited 0 after {exited:.1f}s")


async def test_scale_out_one_then_three_hosts_spread_work_and_survive_a_removed_host(
    hub_setup: tuple[Spawn, TaskHubClient, TableClient],
) -> None:
    """1 host owns all partitions; 3 hosts split them (2/1/1) and all run work; a killed host's
    partitions move to the others once its lease runs out. Throughput per step is printed (the
    scale-out figures themselves come from ``python -m benchmarks.scale_out``)."""
    spawn, client, partitions = hub_setup
    hosts = {"h1": spawn("h1")}

    async def counts_are(expected: list[int]) -> bool:
        counts = await owners(partitions)
        return sorted(v for k, v in counts.items() if k) == expected and "" not in counts

    await eventually(lambda: counts_are([4]), timeout=60, message="one host owns all four partitions")

    async def run_batch(n: int) -> tuple[list[str], float]:
        started = time.monotonic()
        ids = list(await asyncio.gather(*(client.schedule_new_orchestration("hello_sequence") for _ in range(n))))
        await eventually(lambda: _at_least(client, ids, n), timeout=240, interval=0.25, message=f"{n} done")
        return ids, time.monotonic() - started

    _, one_host = await run_batch(30)
    hosts.update(h2=spawn("h2"), h3=spawn("h3"))
    await eventually(lambda: counts_are([1, 1, 2]), timeout=60, message="three hosts share the partitions 2/1/1")
    spread = await owners(partitions)
    assert set(spread) == {"h1", "h2", "h3"}
    assert spread["h1"] <= 2  # the first host gave partitions up (rebalanced), not just kept them

    ids, three_hosts = await run_batch(30)
    outputs = [await client.get_orchestration_state(i) for i in ids]
    activity_hosts = {line.rsplit(" ", 1)[-1] for s in outputs if s and s.output for line in json.loads(s.output)}
    assert activity_hosts == {"h1", "h2", "h3"}  # every host ran activities
    print(f"\nscale-out: 30 hello_sequences in {one_host:.1f}s on 1 host, {three_hosts:.1f}s on 3 hosts")

    victim = next(name for name in ("h2", "h3") if spread[name] == 1)
    rows = [e async for e in partitions.query_entities("PartitionKey eq ''")]
    owned_by_victim = [str(e["RowKey"]) for e in rows if e.get("CurrentOwner") == victim]
    hosts[victim].kill9()
    killed_at = time.monotonic()
    async def owned_by_survivors() -> bool:
        after = {str(e["RowKey"]): e.get("CurrentOwner") async for e in partitions.query_entities("PartitionKey eq ''")}
        return all(after[name] in ("h1", "h2", "h3") and after[name] != victim for name in owned_by_victim)

    # The guarantee: the dead host's partitions are owned again within the lease (plus one acquire
    # round). Whoever claims them may then hold 3 of 4; the balance to 2/2 is a later steal.
    await eventually(owned_by_survivors, timeout=LEASE_SECONDS * 4, interval=0.25,
                     message="the removed host's partition taken over")  # fmt: skip
    takeover = time.monotonic() - killed_at
    # Quiet, it takes about one lease (8.8-9.6 s measured); the test command shares two cores with three
    # hosts, Azurite and pytest, where it took 16.7 s once. The bound is the chaos suite's: the lease
    # must have lapsed and one survivor's read-and-claim round must have run, each starved at worst.
    assert takeover <= 2 * LEASE_SECONDS + 2, f"take-over took {takeover:.1f}s, lease {LEASE_SECONDS}s"
    await eventually(lambda: counts_are([2, 2]), timeout=LEASE_SECONDS * 6, interval=0.25,
                     message="the two remaining hosts balance 2/2")  # fmt: skip
    print(f"removed host (kill -9): its partition taken over after {takeover:.1f}s (lease {LEASE_SECONDS:.0f}s)")
    _, after_removal = await run_batch(10)
    print(f"10 more on the 2 remaining hosts in {after_removal:.1f}s")
