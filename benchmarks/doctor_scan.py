"""How long ``doctor`` takes, and how many storage transactions it makes, on a hub of N instances.

    .venv/bin/python -m benchmarks.doctor_scan [--instances 5000] [--running-share 0.15]

Starts a private in-memory Azurite and writes N instances in the DTAS layout: every Instances row,
and for each one a small history (OrchestratorStarted, ExecutionStarted, TaskScheduled, and for the
finished ones TaskCompleted + ExecutionCompleted) with its sentinel row. A share of the instances is
Running; 1% of those have a finished history under their Running row (the state doctor repairs).
No worker runs. Then it times a full ``doctor`` scan, a ``--quick`` scan and a ``--repair`` run,
with the storage transactions each made (counted by the same pipeline policy as the dashboard).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from durable_azstorage.azurite import Azurite
from durable_azstorage.codec import history_codec, instance_codec
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.dashboard import counted_account
from durable_azstorage.model import (
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorStartedEvent,
    TaskCompletedEvent,
    TaskScheduledEvent,
)
from durable_azstorage.operations import DoctorOptions, diagnose
from durable_azstorage.storage import TaskHubResources


def _history(instance_id: str, execution_id: str, at: datetime, finished: bool) -> list[HistoryEvent]:
    instance = OrchestrationInstance(instance_id=instance_id, execution_id=execution_id)
    events: list[HistoryEvent] = [
        OrchestratorStartedEvent(timestamp=at),
        ExecutionStartedEvent(orchestration_instance=instance, name="order_flow", input="1", timestamp=at),
        TaskScheduledEvent(event_id=0, name="charge", input="1", timestamp=at),
    ]
    if finished:
        events += [
            TaskCompletedEvent(task_scheduled_id=0, result='"ok"', timestamp=at),
            ExecutionCompletedEvent(orchestration_status=OrchestrationStatus.Completed, result='"ok"', timestamp=at),
        ]
    return events


async def populate(account: StorageAccount, hub: str, count: int, running_share: float) -> int:
    names = TaskHubNames(hub)
    await TaskHubResources(account, names).create()
    at = datetime.now(timezone.utc) - timedelta(hours=2)
    running_every = max(1, round(1 / running_share)) if running_share > 0 else count + 1
    stale = 0
    async with account.table_service() as tables:
        instances = tables.get_table_client(names.instances_table)
        history = tables.get_table_client(names.history_table)
        limiter = asyncio.Semaphore(32)

        async def write(n: int) -> bool:
            instance_id, execution_id = f"inst-{n:05d}", uuid.uuid4().hex
            running = n % running_every == 0
            broken = running and n % (running_every * 100) == 0
            events = _history(instance_id, execution_id, at, finished=not running or broken)
            row = instance_codec.instance_update_for_checkpoint(
                events, instance_id=instance_id, execution_id=execution_id, custom_status=None,
                task_hub_name=hub, now=at,
            )
            if broken:
                row["RuntimeStatus"] = "Running"
            rows: list[Any] = [
                ("upsert", history_codec.history_event_to_entity(
                    e, instance_id=instance_id, sequence_number=i, execution_id=execution_id))
                for i, e in enumerate(events)
            ]
            rows.append(("upsert", history_codec.sentinel_entity(
                instance_id, execution_id, checkpoint_complete=True, completed_at=at)))
            async with limiter:
                await history.submit_transaction(rows)
                await instances.upsert_entity(row)
            return broken

        stale = sum(await asyncio.gather(*(write(n) for n in range(count))))
    return stale


async def measure(account: StorageAccount, hub: str) -> None:
    for label, options, repair in (
        ("full scan", DoctorOptions(), False),
        ("quick scan", DoctorOptions(full_scan=False), False),
        ("full scan --repair", DoctorOptions(), True),
    ):
        counted, counter = counted_account(account)
        started = time.perf_counter()
        report = await diagnose(counted, hub, options=options, repair=repair)
        seconds = time.perf_counter() - started
        found = {f.code: f.count for f in report.findings if f.count}
        fixed = sum(1 for r in report.repairs if r.outcome.value == "fixed")
        print(f"| {label} | {seconds:.2f} s | {counter.total} | {report.scanned['instances']} rows, "
              f"{report.scanned['histories']} histories | {found}{f', {fixed} fixed' if repair else ''} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--running-share", type=float, default=0.15)
    args = parser.parse_args()
    with Azurite() as azurite:
        account = StorageAccount.from_connection_string(azurite.connection_string)
        hub = "doctor" + uuid.uuid4().hex[:8]
        started = time.perf_counter()
        stale = await populate(account, hub, args.instances, args.running_share)
        print(f"{args.instances} instances written in {time.perf_counter() - started:.1f} s "
              f"({stale} Running rows over finished histories)\n")
        print("| run | time | storage transactions | read | findings |")
        print("|---|---|---|---|---|")
        await measure(account, hub)


if __name__ == "__main__":
    asyncio.run(main())
