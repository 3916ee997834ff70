"""Scale-out: hello-sequences on one task hub served by 1, 2 and 4 worker processes.

    .venv/bin/python -m benchmarks.scaleout --workers 1,2,4 --instances 100 [--json out.json]

For each count: a fresh hub on a private Azurite, that many ``benchmarks.scaleout worker``
processes (the suite's app, library defaults), partitions claimed, then this process (the
client only) starts ``--instances`` hello-sequences at once and waits for them. Reported per
row: wall time and throughput, engine CPU (every worker process plus this client) and store
CPU (Azurite) per orchestration, the cores both used, and how the 4 partitions were spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.azurite import Azurite
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources, TaskHubStorage
from durable_azstorage.worker import Worker

from . import app
from .measure import ServerCpu

PARTITIONS = 4


async def _serve(connection_string: str, hub: str) -> None:
    """One worker process: serve the hub until SIGTERM."""
    account = StorageAccount.from_connection_string(connection_string)
    settings = WorkerSettings(task_hub_name=hub, max_queue_polling_interval=timedelta(seconds=30))
    worker = Worker(account, settings)
    for fn in app.ORCHESTRATORS:
        worker.add_orchestrator(fn)
    for fn in app.ACTIVITIES:
        worker.add_activity(fn)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


def _spawn(argv: list[str], count: int) -> list[subprocess.Popen[str]]:
    """Start the worker processes and wait until each has started its worker."""
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()
    return procs


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _owners(account: StorageAccount, hub: str) -> Counter[str]:
    async with TaskHubStorage(account, TaskHubNames(hub, PARTITIONS)) as storage:
        leases = await storage.partitions.read_all()
    return Counter(lease.current_owner or "" for lease in leases)


async def _row(
    account: StorageAccount, connection_string: str, workers: int, instances: int, store: ServerCpu
) -> dict[str, Any]:
    hub = "scale" + uuid.uuid4().hex[:10]
    await TaskHubResources(account, TaskHubNames(hub, PARTITIONS)).create()
    argv = [sys.executable, "-m", "benchmarks.scaleout", "worker", "--connection-string", connection_string]
    argv += ["--hub", hub]
    procs = _spawn(argv, workers)
    try:
        deadline = time.monotonic() + 120
        while True:
            owners = await _owners(account, hub)
            if "" not in owners and sum(owners.values()) == PARTITIONS and len(owners) == min(workers, PARTITIONS):
                break
            if time.monotonic() > deadline:
                break  # report the spread as it is
            await asyncio.sleep(0.5)
        workers_cpu = [ServerCpu(p.pid) for p in procs]
        before = [w.seconds() or 0.0 for w in workers_cpu], store.seconds() or 0.0, time.process_time()
        started = time.perf_counter()
        async with await TaskHubClient.open(account, hub) as client:
            starts = [client.schedule_new_orchestration("hello_sequence") for _ in range(instances)]
            ids = await asyncio.gather(*starts)
            states = await asyncio.gather(*(client.wait_for_completion(i, timeout=600) for i in ids))
        wall = time.perf_counter() - started
        after = [w.seconds() or 0.0 for w in workers_cpu], store.seconds() or 0.0, time.process_time()
        failed = sum(1 for s in states if s is None or s.runtime_status != OrchestrationStatus.Completed)
        engine = sum(a - b for a, b in zip(after[0], before[0], strict=True)) + (after[2] - before[2])
        store_cpu = after[1] - before[1]
        spread = sorted((await _owners(account, hub)).values(), reverse=True)
    finally:
        _stop(procs)
        await TaskHubResources(account, TaskHubNames(hub, PARTITIONS)).delete()
    return {
        "workers": workers,
        "instances": instances,
        "failed": failed,
        "wall_seconds": round(wall, 2),
        "orchestrations_per_second": round(instances / wall, 1),
        "engine_cpu_ms_per_orchestration": round(1000 * engine / instances, 1),
        "store_cpu_ms_per_orchestration": round(1000 * store_cpu / instances, 1),
        "engine_cores": round(engine / wall, 2),
        "store_cores": round(store_cpu / wall, 2),
        "partition_spread": spread,
    }


async def _run(workers: list[int], instances: int) -> dict[str, Any]:
    with Azurite() as azurite:
        proc = getattr(azurite, "_proc", None)
        store = ServerCpu(proc.pid if proc is not None else None)
        account = StorageAccount.from_connection_string(azurite.connection_string)
        rows = [await _row(account, azurite.connection_string, n, instances, store) for n in workers]
    return {"cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("worker")
    serve.add_argument("--connection-string", required=True)
    serve.add_argument("--hub", required=True)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.command == "worker":
        asyncio.run(_serve(args.connection_string, args.hub))
        return
    report = asyncio.run(_run([int(n) for n in args.workers.split(",")], args.instances))
    header = ("workers", "wall s", "orch/s", "engine ms/orch", "store ms/orch", "engine cores", "store cores")
    print("  ".join(f"{h:>14}" for h in header), " spread")
    for r in report["rows"]:
        keys = ("workers", "wall_seconds", "orchestrations_per_second", "engine_cpu_ms_per_orchestration")
        keys += ("store_cpu_ms_per_orchestration", "engine_cores", "store_cores")
        print("  ".join(f"{r[k]!s:>14}" for k in keys), " ", r["partition_spread"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
