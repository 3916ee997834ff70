"""Quick measurements on a private Azurite: wall time and storage transactions per workload.

    .venv/bin/python -m benchmarks.quick --workload fanout --count 300
    .venv/bin/python -m benchmarks.quick --workload hello --count 20

The seed of the benchmark suite (issue "Benchmark suite"): one worker in this process, the
durabletask SDK runtime, transactions counted with ``durable_azstorage.metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from durabletask import task

from durable_azstorage.azurite import Azurite
from durable_azstorage.client import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.metrics import TransactionCounter
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker


def square(ctx: task.ActivityContext, value: int) -> int:
    return value * value


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def fanout(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    values = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return sum(values)


def hello_sequence(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for city in ("Tokyo", "Seattle", "London", "Cairo", "Lima"):
        out.append((yield ctx.call_activity(hello, input=city)))
    return out


async def _measure(azurite: Azurite, workload: str, count: int) -> dict[str, Any]:
    endpoints = azurite.endpoints
    assert endpoints is not None
    ports = {
        urlsplit(u).port or 0: s
        for u, s in ((endpoints.blob, "blob"), (endpoints.queue, "queue"), (endpoints.table, "table"))
    }
    counter = TransactionCounter(ports)
    account = StorageAccount.from_connection_string(azurite.connection_string).with_client_kwargs(
        **counter.client_kwargs()
    )
    settings = WorkerSettings(task_hub_name="Bench", max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(account, settings)
    for fn in (fanout, hello_sequence):
        worker.add_orchestrator(fn)
    for activity in (square, hello):
        worker.add_activity(activity)
    async with worker, await TaskHubClient.open(account, "Bench") as client:
        warm = await client.schedule_new_orchestration("hello_sequence")
        await client.wait_for_completion(warm, timeout=60)
        counter.reset()
        started = time.perf_counter()
        if workload == "fanout":
            ids = [await client.schedule_new_orchestration("fanout", input=count)]
            orchestrations, activities = 1, count
        else:
            ids = [await client.schedule_new_orchestration("hello_sequence") for _ in range(count)]
            orchestrations, activities = count, 5 * count
        for instance_id in ids:
            await client.wait_for_completion(instance_id, timeout=600)
        wall = time.perf_counter() - started
    total = counter.total
    return {
        "workload": workload,
        "count": count,
        "wall_seconds": round(wall, 2),
        "activities_per_second": round(activities / wall, 1),
        "transactions_total": total,
        "transactions_per_orchestration": round(total / orchestrations, 1),
        "transactions_per_activity": round(total / activities, 2),
        "by_operation": {f"{s}.{op}": n for (s, op), n in counter.snapshot().most_common()},
        "note": "includes idle polling (max polling interval 1 s) and the client's status polls",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("fanout", "hello"), default="fanout")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    with Azurite() as azurite:
        result = asyncio.run(_measure(azurite, args.workload, args.count))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
