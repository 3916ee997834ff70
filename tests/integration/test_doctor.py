"""``doctor`` on Azurite: real broken states, found with the right ids, repaired, confirmed by a worker.

The states are the ones users meet: a row left Running behind a finished history (a worker that
died between the history and the row write), history whose row is gone, a Pending instance whose
start message vanished, an entity locked by an orchestration that was terminated inside its
critical section, an orphaned large-message blob, a deleted queue, a control queue outside the
partition count, messages retried past the poison threshold, quarantined messages.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from azure.data.tables import UpdateMode
from durabletask import entities, task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec import entity_codec
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import escape_partition_key
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.operations import DoctorOptions, DoctorReport, RepairOutcome, diagnose, health_findings
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubStorage
from durable_azstorage.worker import Worker
from tests.helpers import eventually

NOW = DoctorOptions(horizon=timedelta(0), orphan_blob_age=timedelta(0), poison_threshold=5)


def hello(ctx: task.OrchestrationContext, name: str) -> Generator[task.Task[Any], Any, str]:
    greeting: str = yield ctx.call_activity(greet, input=name)
    return greeting


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def hold_lock(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, None]:
    with (yield ctx.lock_entities([entities.EntityInstanceId("counter", key)])):
        yield ctx.wait_for_external_event("never")


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value


def _worker(account: StorageAccount, hub: str) -> Worker:
    settings = WorkerSettings(
        task_hub_name=hub, max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    worker = Worker(account, settings)
    worker.add_orchestrator(hello)
    worker.add_orchestrator(hold_lock)
    worker.add_activity(greet)
    worker.add_entity(Counter)
    return worker


async def _lock_holder(account: StorageAccount, hub_name: str) -> str | None:
    async with await TaskHubStorage.discover(account, hub_name) as hub:
        record = await hub.instances.get("@counter@k", fetch_input=False, fetch_output=False)
    status = entity_codec.decode_entity_status(record.state.custom_status) if record else None
    return status.locked_by if status else None


def _ids(report: DoctorReport, code: str) -> list[str]:
    finding = report.finding(code)
    return sorted(str(i["id"]) for i in finding.items) if finding is not None else []


async def _break_the_hub(account: StorageAccount, hub_name: str, client: TaskHubClient) -> None:
    """Everything a crash or a careless hand can leave behind, on a hub whose workers stopped."""
    async with await TaskHubStorage.discover(account, hub_name) as hub:
        instances = hub.table_service.get_table_client(hub.names.instances_table)
        # 1. a finished run whose row went back to Running (as if the row write never happened)
        await instances.update_entity(
            {"PartitionKey": "stale", "RowKey": "", "RuntimeStatus": "Running"}, mode=UpdateMode.MERGE
        )
        # 2. history without its row
        await instances.delete_entity(escape_partition_key("rowless"), "")
        # 3. a Pending instance whose start message is gone
        await client.schedule_new_orchestration("hello", input="x", instance_id="lost-start")
        await hub.control_queue_for("lost-start").create()
        await hub.queue_service.get_queue_client(hub.names.control_queue_for("lost-start")).clear_messages()
        # 4. an orphaned large-message blob
        await hub.payloads.upload_text("ghost/message-0123-ExecutionStarted.json.gz", "{}")
        # 5. the work-item queue deleted by hand
        await hub.queue_service.get_queue_client(hub.names.work_item_queue).delete_queue()
        # 6. a control queue outside the partition count, holding a message
        extra = hub.queue_service.get_queue_client(f"{hub.names.lower}-control-07")
        await extra.create_queue()
        await extra.send_message('{"stranded": true}')
        # 7. a message retried past the poison threshold (received and put back 6 times)
        queue = hub.queue_service.get_queue_client(hub.names.control_queue(0))
        await queue.send_message("not a DTAS message")
        for _ in range(6):
            async for message in queue.receive_messages(max_messages=1, visibility_timeout=30):
                await queue.update_message(message, visibility_timeout=0)
        # 8. a quarantined message
        await hub.poison.quarantine(queue_name=hub.names.control_queue(1), message_id="m1", body="{}",
                                    reason="test", dequeue_count=20, instance_id="poisoned")


async def test_doctor_finds_and_repairs_a_broken_hub(storage_account: StorageAccount, task_hub_name: str) -> None:
    client = await TaskHubClient.open(storage_account, task_hub_name)
    async with client:
        async with _worker(storage_account, task_hub_name) as worker:
            await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
            for instance_id in ("stale", "rowless", "fine"):
                await client.schedule_new_orchestration("hello", input=instance_id, instance_id=instance_id)
                await client.wait_for_completion(instance_id, timeout=60)
            await client.schedule_new_orchestration("hold_lock", input="k", instance_id="locker")

            async def locked() -> bool:
                return await _lock_holder(storage_account, task_hub_name) == "locker"

            await eventually(locked, timeout=30, message="entity locked")
            await client.terminate("locker")
            await client.wait_for_completion("locker", timeout=60)
        healthy = await diagnose(storage_account, task_hub_name)
        assert _ids(healthy, "entities.lock-held-by-finished") == ["@counter@k"]
        assert _ids(healthy, "partitions.unclaimed") == [f"{task_hub_name.lower()}-control-0{i}" for i in range(4)]
        quick = await diagnose(storage_account, task_hub_name, options=DoctorOptions(full_scan=False))
        lock = quick.finding("entities.lock-held-by-finished")
        assert lock is not None and lock.items[0]["holderStatus"] == "Terminated"  # holder read on its own
        assert quick.scanned["instances"] < healthy.scanned["instances"]

        await _break_the_hub(storage_account, task_hub_name, client)
        steps: list[str] = []
        report = await diagnose(storage_account, task_hub_name, options=NOW, progress=steps.append)
        assert steps[:2] == ["tables and queues", "partition leases"] and "large-message blobs" in steps
        assert _ids(report, "status.terminal-history-live-row") == ["stale"]
        assert _ids(report, "status.history-without-row") == ["rowless"]
        assert _ids(report, "status.pending-start-missing") == ["lost-start"]
        assert _ids(report, "blobs.orphaned") == ["ghost/message-0123-ExecutionStarted.json.gz"]
        assert _ids(report, "resources.missing") == [f"{task_hub_name.lower()}-workitems"]
        assert _ids(report, "partitions.stranded-queue") == [f"{task_hub_name.lower()}-control-07"]
        assert _ids(report, "poison.quarantined") == ["poisoned"]
        assert len(_ids(report, "messages.undecodable")) == 1
        assert report.finding("messages.undecodable").items[0]["dequeueCount"] == 6  # type: ignore[union-attr]
        assert not report.healthy
        json.dumps(await health_findings(storage_account, task_hub_name))  # JSON-ready as it is
        capped = await diagnose(storage_account, task_hub_name, options=replace(NOW, max_history_reads=0))
        assert _ids(capped, "status.terminal-history-live-row") == [] and capped.scanned["histories"] == 0
        assert any("not checked (history reads capped at 0)" in note for note in capped.limits)

        repaired = await diagnose(storage_account, task_hub_name, repair=True, options=NOW)
        outcomes = {(r.repair, r.target): r.outcome for r in repaired.repairs}
        assert outcomes[("sync-status-from-history", "stale")] is RepairOutcome.FIXED
        assert outcomes[("recreate-instance-row", "rowless")] is RepairOutcome.FIXED
        assert outcomes[("resend-start-message", "lost-start")] is RepairOutcome.FIXED
        assert outcomes[("release-entity-lock", "@counter@k")] is RepairOutcome.FIXED
        assert outcomes[("delete-orphaned-blob", "ghost/message-0123-ExecutionStarted.json.gz")] is RepairOutcome.FIXED
        for code in ("status.terminal-history-live-row", "status.history-without-row", "status.pending-start-missing",
                     "blobs.orphaned", "resources.missing"):
            assert _ids(repaired, code) == [], code
        assert (await client.get_orchestration_state("stale")).runtime_status is OrchestrationStatus.Completed  # type: ignore[union-attr]
        rowless = await client.get_orchestration_state("rowless")
        assert rowless is not None and rowless.runtime_status is OrchestrationStatus.Completed
        assert json.loads(rowless.output or "null") == "Hello rowless!"

        # Idempotent: nothing left for a second repair run to fix.
        again = await diagnose(storage_account, task_hub_name, repair=True, options=NOW)
        assert not [r for r in again.repairs if r.outcome is RepairOutcome.FIXED and r.repair != "release-entity-lock"]

        # A worker confirms: the re-sent start runs, the released entity takes operations again.
        async with _worker(storage_account, task_hub_name):
            state = await client.wait_for_completion("lost-start", timeout=60)
            assert state.runtime_status is OrchestrationStatus.Completed

            async def unlocked() -> bool:
                return await _lock_holder(storage_account, task_hub_name) is None

            await eventually(unlocked, timeout=30, message="entity lock released")


async def test_doctor_on_a_missing_hub_says_so(storage_account: StorageAccount) -> None:
    import pytest

    from durable_azstorage.errors import TaskHubNotFoundError

    with pytest.raises(TaskHubNotFoundError, match="no task hub 'nosuchhub42'"):
        await diagnose(storage_account, "nosuchhub42")
    assert TaskHubNames("nosuchhub42").task_hub == "nosuchhub42"


async def test_doctor_reads_the_blob_leases_of_a_dotnet_hub(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    """A hub of the .NET blob partition managers (v1/v2): lease blobs and taskhub.json, no v3 rows."""
    from durable_azstorage.storage import TaskHubResources

    names = TaskHubNames(task_hub_name)
    await TaskHubResources(storage_account, names).create()
    async with storage_account.blob_service() as blobs, storage_account.table_service() as tables:
        await tables.delete_table(names.partitions_table)  # a v2 hub has no Partitions table
        leases = blobs.get_container_client(names.leases_container)
        await leases.create_container()
        await leases.upload_blob("taskhub.json", json.dumps(
            {"TaskHubName": task_hub_name, "CreatedAt": "2024-01-01T00:00:00Z", "PartitionCount": 8}))
        for kind, owner in (("intent", "worker-a"), ("ownership", "worker-b")):
            for queue in names.control_queues:
                blob = await leases.upload_blob(f"{kind}/{queue}", json.dumps(
                    {"PartitionId": queue, "Owner": owner, "Token": None, "Epoch": 1}))
                if queue.endswith("-00"):
                    await blob.acquire_lease(lease_duration=60)
    report = await diagnose(storage_account, task_hub_name, options=NOW)
    assert report.partition_count == 8
    mismatch = report.finding("partitions.count-mismatch")
    assert mismatch is not None and mismatch.items == [
        {"id": task_hub_name, "partitionsTableRows": None, "taskHubJson": 8, "controlQueues": 4}
    ]
    assert _ids(report, "partitions.contested") == [names.control_queue(0)]
    assert report.finding("partitions.contested").items[0]["intentOwner"] == "worker-a"  # type: ignore[union-attr]
    assert _ids(report, "partitions.no-live-owner") == sorted(names.control_queues[1:])
    assert sorted(_ids(report, "resources.missing")) == sorted(
        [names.partitions_table, *[f"{task_hub_name.lower()}-control-0{i}" for i in range(4, 8)]]
    )
