"""``python -m benchmarks.idle_start``: what an idle worker costs per hour vs how soon it starts new work.

For each polling ceiling (``maxQueuePollingInterval``): start a worker on a fresh hub, let it go
idle until its back-off has reached the ceiling, count the storage transactions it makes over a
window (extrapolated to an hour), then have a *child process* start instances one at a time, each
after the worker has been idle again, and time start-to-completed of a no-op orchestration there
(the child polls the Instances row every 50 ms; nothing in the worker's process knows of the start).
Azurite unless ``--connection-string``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.metrics import TransactionCounter
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker


def noop(ctx: task.OrchestrationContext, value: Any) -> Generator[task.Task[Any], Any, Any]:
    return value
    yield  # a generator orchestrator, like real ones


@contextlib.contextmanager
def _storage(connection_string: str | None) -> Iterator[str]:
    if connection_string:
        yield connection_string
        return
    from durable_azstorage.azurite import Azurite

    with Azurite() as azurite:
        yield azurite.connection_string


async def _measure(conn: str, ceiling: float, window: float, starts: int) -> dict[str, float]:
    counter = TransactionCounter()
    account = StorageAccount.from_connection_string(conn).with_client_kwargs(**counter.client_kwargs())
    hub = "idle" + uuid.uuid4().hex[:10]
    settings = WorkerSettings(task_hub_name=hub, max_queue_polling_interval=timedelta(seconds=ceiling))
    worker = Worker(account, settings)
    worker.add_orchestrator(noop)
    settle = 2 * ceiling + 3  # the back-off (50 ms doubling) reaches the ceiling within ~2 ceilings
    async with worker:
        for _ in range(600):  # partitions claimed (a minute at most on a fresh hub)
            if len(worker.owned_partitions) == settings.partition_count:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle)
        counter.reset()
        await asyncio.sleep(window)
        idle_per_hour = counter.total * 3600 / window
        latencies = await _starts_from_another_process(conn, hub, starts, settle)
    return {
        "ceiling_s": ceiling,
        "idle_tx_per_hour": idle_per_hour,
        "start_p50_s": statistics.median(latencies),
        "start_max_s": max(latencies),
    }


async def _starts_from_another_process(conn: str, hub: str, starts: int, settle: float) -> list[float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.idle_start", "--child", hub, "--connection-string", conn,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    latencies = []
    try:
        await child.stdout.readline()  # "ready": imported and connected
        for _ in range(starts):
            await asyncio.sleep(settle)  # idle again: the worker is at its ceiling
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            latencies.append(float((await child.stdout.readline()).decode()))
    finally:
        child.stdin.close()
        await child.wait()
    return latencies


async def _child(conn: str, hub: str) -> None:
    """Start a no-op orchestration per line on stdin; print start-to-completed seconds."""
    async with await TaskHubClient.open(StorageAccount.from_connection_string(conn), hub) as client:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            began = time.perf_counter()
            instance_id = await client.schedule_new_orchestration("noop", input=1)
            for _ in range(20 * 300):
                state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
                if state is not None and state.runtime_status is OrchestrationStatus.Completed:
                    break
                await asyncio.sleep(0.05)
            print(f"{time.perf_counter() - began:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ceilings", default="30,10,5,2,1", help="Seconds, comma-separated.")
    parser.add_argument("--window", type=float, default=60.0, help="Idle seconds counted per ceiling.")
    parser.add_argument("--starts", type=int, default=5, help="Instances started per ceiling.")
    parser.add_argument("--connection-string")
    parser.add_argument("--child", metavar="HUB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.connection_string, args.child))
        return
    with _storage(args.connection_string) as conn:
        print("| ceiling (s) | idle transactions / hour | start → completed p50 (s) | max (s) |")
        print("|---:|---:|---:|---:|")
        for ceiling in (float(c) for c in args.ceilings.split(",")):
            row = asyncio.run(_measure(conn, ceiling, args.window, args.starts))
            print(f"| {row['ceiling_s']:g} | {row['idle_tx_per_hour']:,.0f} | {row['start_p50_s']:.2f} | "
                  f"{row['start_max_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
