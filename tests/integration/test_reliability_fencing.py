"""Issue 14 defect 7: a worker that cannot confirm partition ownership stops dispatching in time.

The Partitions table becomes unreadable (every read answers 503) while the worker owns all
partitions. Before its lease could expire — when another host may claim the partition — the
worker must have stopped consuming every control queue. When reads work again it resumes.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import Lease
from durable_azstorage.worker import Worker
from tests.e2e.apps import register
from tests.helpers import eventually


async def test_unreadable_partitions_table_stops_dispatch_before_the_lease_expires(
    storage_account: StorageAccount, task_hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_azstorage.worker.partition_manager")
    lease = timedelta(seconds=6)
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        lease_interval=lease,
        lease_acquire_interval=timedelta(seconds=2),
        lease_claim_duration=lease,
        partition_poll_interval=timedelta(seconds=0.5),
        max_queue_polling_interval=timedelta(seconds=1),
    )
    worker = Worker(storage_account, settings)
    register(worker)
    async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions owned")
        table = worker.hub.partitions
        real_read_all = table.read_all

        async def unavailable() -> list[Lease]:
            error = HttpResponseError(message="Server Busy")
            error.status_code = 503
            raise error

        confirmed = await real_read_all()
        last_expiry = max(row.expires_at for row in confirmed if row.expires_at is not None)
        table.read_all = unavailable  # type: ignore[method-assign]
        broke_at = time.monotonic()
        await eventually(lambda: worker.owned_partitions == [], timeout=20, message="dispatch stopped")
        fenced_after = time.monotonic() - broke_at
        # Each partition stopped before the lease it last confirmed could expire.
        fenced = [r for r in caplog.records if r.getMessage() == "partitions.ownership_unconfirmed"]
        assert sorted(r.queue for r in fenced) == sorted(row.name for row in confirmed)  # type: ignore[attr-defined]
        for record in fenced:
            decided = datetime.fromtimestamp(record.created, tz=timezone.utc)
            assert decided < datetime.fromisoformat(record.lease_expires) <= last_expiry  # type: ignore[attr-defined]
        assert fenced_after < lease.total_seconds()

        table.read_all = real_read_all  # type: ignore[method-assign]
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions owned again")
        instance_id = await client.schedule_new_orchestration("hello_sequence")
        state = await client.wait_for_completion(instance_id, timeout=60)
        assert state is not None and state.runtime_status == OrchestrationStatus.Completed
