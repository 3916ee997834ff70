"""Throughput of one task hub as worker *processes* are added: ``python -m benchmarks.scale_out``.

For each host count (default 1, 2, 3, 4) on a fresh hub of 4 partitions in a private Azurite:
start that many ``durable-azstorage worker`` processes, wait until they own all partitions,
start N five-step sequences whose activities burn a few milliseconds of CPU each (as real
activities do), time until all are completed, stop the workers with SIGTERM.

On one machine the hosts share its cores with Azurite, so the curve flattens where either the CPU
or the emulator is saturated; on Azure each host is its own machine and the storage account is the
bound (docs/deploy.md, "Limits").

    python -m benchmarks.scale_out [--hosts 1 2 3 4] [--instances 100] [--work-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.azurite import Azurite
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus

REPO = Path(__file__).resolve().parents[1]
STEPS = 5


def work(ctx: task.ActivityContext, milliseconds: float) -> str:
    """Burn CPU for ``milliseconds`` (no sleep: a sleeping activity would scale for free)."""
    deadline = time.process_time() + milliseconds / 1000
    while time.process_time() < deadline:
        pass
    return os.environ.get("SCALE_OUT_HOST", "?")


def sequence(ctx: task.OrchestrationContext, milliseconds: float) -> Generator[task.Task[Any], Any, list[str]]:
    hosts = []
    for _ in range(STEPS):
        hosts.append((yield ctx.call_activity(work, input=milliseconds)))
    return hosts


def register(worker: Any) -> None:
    worker.add_orchestrator(sequence)
    worker.add_activity(work)


def start_hosts(count: int, connection: str, hub: str, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    for n in range(count):
        log = open(log_dir / f"{hub}-h{n}.log", "wb")  # noqa: SIM115 - the child keeps it
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "durable_azstorage.cli", "worker", "--app", "benchmarks.scale_out:register",
             "--connection", connection, "--task-hub-name", hub, "--worker-id", f"h{n}",
             "--max-polling-interval", "1", "--lease-interval", "10"],
            cwd=REPO, env={**os.environ, "SCALE_OUT_HOST": f"h{n}", "PYTHONPATH": str(REPO)},
            stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
    return processes


async def wait_for_owners(account: StorageAccount, hub: str, hosts: int, deadline: float) -> None:
    async with account.table_service() as tables:
        table = tables.get_table_client(f"{hub}Partitions")
        while time.monotonic() < deadline:
            try:
                rows = [e async for e in table.query_entities("PartitionKey eq ''")]
            except Exception:  # the first worker has not created the hub yet
                rows = []
            owners = {str(r.get("CurrentOwner") or "") for r in rows}
            if len(rows) == 4 and "" not in owners and len(owners) == min(hosts, 4):
                return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"{hosts} hosts did not share the partitions in time")


async def measure(account: StorageAccount, connection: str, hosts: int, args: argparse.Namespace) -> dict[str, Any]:
    hub = f"scale{hosts}h{int(time.time()) % 100000}"
    processes = start_hosts(hosts, connection, hub, args.log_dir)
    try:
        await wait_for_owners(account, hub, hosts, time.monotonic() + 120)
        async with await TaskHubClient.open(account, hub) as client:
            started = time.monotonic()
            ids = await asyncio.gather(
                *(client.schedule_new_orchestration("sequence", input=args.work_ms) for _ in range(args.instances))
            )
            pending = set(ids)
            while pending:
                if time.monotonic() - started > args.timeout:
                    raise TimeoutError(f"{len(pending)} of {args.instances} not completed")
                states = await asyncio.gather(
                    *(client.get_orchestration_state(i, fetch_payloads=False) for i in pending)
                )
                pending -= {s.instance_id for s in states if s and s.runtime_status == OrchestrationStatus.Completed}
                await asyncio.sleep(0.25)
            elapsed = time.monotonic() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
    return {"hosts": hosts, "seconds": elapsed, "per_second": args.instances / elapsed}


async def main_async(args: argparse.Namespace) -> None:
    args.log_dir.mkdir(parents=True, exist_ok=True)
    azurite = Azurite(location=None)
    endpoints = azurite.start()
    try:
        connection = endpoints.connection_string
        account = StorageAccount.from_connection_string(connection)
        print(f"{args.instances} sequences of {STEPS} activities x {args.work_ms} ms CPU, 4 partitions, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start")
        print("| hosts | seconds | orchestrations/s | activities/s |\n|---|---|---|---|")
        for hosts in args.hosts:
            row = await measure(account, connection, hosts, args)
            print(f"| {hosts} | {row['seconds']:.1f} | {row['per_second']:.1f} | {row['per_second'] * STEPS:.0f} |",
                  flush=True)
        print(f"load {os.getloadavg()[0]:.1f} at end; worker logs in {args.log_dir}")
    finally:
        azurite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--log-dir", type=Path, default=REPO / "benchmarks" / "results" / "scale-out-logs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
