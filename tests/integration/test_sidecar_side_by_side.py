"""An in-process worker and a sidecar with the SDK's gRPC worker serve one task hub side by side:
partitions are shared through the Partitions table and both run orchestrations and activities."""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from tests.helpers import eventually
from tests.sidecar_support import HostedWorker, fast_settings

pytestmark = pytest.mark.integration


def _functions(host_name: str) -> tuple[Any, Any]:
    def where(ctx: task.ActivityContext, step: int) -> str:
        return f"activity {step} on {host_name}"

    def tour(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
        out = []
        for step in range(3):
            out.append((yield ctx.call_activity("where", input=step)))
        return out

    return tour, where


async def test_in_process_worker_and_sidecar_share_a_hub(storage_account: StorageAccount) -> None:
    hub = "sbs" + uuid.uuid4().hex[:12]
    hosts = []
    for mode in ("in-process", "sidecar"):
        host = HostedWorker(storage_account, fast_settings(hub, partition_count=4, worker_id=mode), mode)
        tour, where = _functions(mode)
        host.add_orchestrator(tour)
        host.add_activity(where)
        hosts.append(host)
    async with hosts[0] as in_process, hosts[1] as sidecar_host:

        def balanced() -> bool:
            return len(in_process.owned_partitions) == 2 and len(sidecar_host.owned_partitions) == 2

        await eventually(balanced, timeout=60, interval=0.2, message="two partitions each")
        client = await TaskHubClient.open(storage_account, hub)
        async with client:
            ids = [await client.schedule_new_orchestration("tour") for _ in range(24)]
            states = [await client.wait_for_completion(i, timeout=120) for i in ids]
    assert all(s.runtime_status == OrchestrationStatus.Completed for s in states)
    outputs = [json.loads(s.output or "[]") for s in states]
    assert all([line.split(" on ")[0] for line in out] == ["activity 0", "activity 1", "activity 2"] for out in outputs)
    # Activities come from the shared work-item queue: both hosts ran some.
    assert {line.rsplit(" ", 1)[-1] for out in outputs for line in out} == {"in-process", "sidecar"}
