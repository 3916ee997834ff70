"""``python -m benchmarks.idle_start``: what an idle worker costs per hour vs how soon it starts new work.

For each polling ceiling (``maxQueuePollingInterval``): start a worker on a fresh hub, let it go
idle until its back-off has reached the ceiling, count the storage transactions it makes over a
window (extrapolated to an hour), then start instances one at a time from a *separate* client (its
own storage clients, so no in-process wake-up helps) after the worker has been idle again, and
measure start-to-completed latency of a no-op orchestration. Azurite unless ``--connection-string``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.metrics import TransactionCounter
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
        latencies = []
        client_account = StorageAccount.from_connection_string(conn)
        async with await TaskHubClient.open(client_account, hub) as client:
            for _ in range(starts):
                await asyncio.sleep(settle)  # idle again: the worker is at its ceiling
                began = time.perf_counter()
                instance_id = await client.schedule_new_orchestration("noop", input=1)
                await client.wait_for_completion(instance_id, timeout=ceiling * 3 + 30)
                latencies.append(time.perf_counter() - began)
    return {
        "ceiling_s": ceiling,
        "idle_tx_per_hour": idle_per_hour,
        "start_p50_s": statistics.median(latencies),
        "start_max_s": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ceilings", default="30,10,5,2,1", help="Seconds, comma-separated.")
    parser.add_argument("--window", type=float, default=60.0, help="Idle seconds counted per ceiling.")
    parser.add_argument("--starts", type=int, default=5, help="Instances started per ceiling.")
    parser.add_argument("--connection-string")
    args = parser.parse_args()
    with _storage(args.connection_string) as conn:
        print("| ceiling (s) | idle transactions / hour | start → completed p50 (s) | max (s) |")
        print("|---:|---:|---:|---:|")
        for ceiling in (float(c) for c in args.ceilings.split(",")):
            row = asyncio.run(_measure(conn, ceiling, args.window, args.starts))
            print(f"| {row['ceiling_s']:g} | {row['idle_tx_per_hour']:,.0f} | {row['start_p50_s']:.2f} | "
                  f"{row['start_max_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
