"""OpenTelemetry metrics of a real worker on Azurite, read with the SDK's InMemoryMetricReader.

A hello sequence, a failing orchestration and an undecodable work item produce: storage
transactions by service and operation, work items by kind with their latency, outcomes by status,
one poison message, the queue depth/age gauges per partition and the owned-partition gauge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from durable_azstorage import telemetry
from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources
from durable_azstorage.worker import Worker
from tests.helpers import eventually

Points = dict[str, list[tuple[dict[str, Any], Any]]]


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def boom(ctx: task.ActivityContext, _: None) -> None:
    raise ValueError("boom")


def sequence(ctx: task.OrchestrationContext, _: None) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for city in ("Tokyo", "Seattle", "London"):
        out.append((yield ctx.call_activity(hello, input=city)))
    return out


def failing(ctx: task.OrchestrationContext, _: None) -> Generator[task.Task[Any], Any, None]:
    yield ctx.call_activity(boom)


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    telemetry.metrics.enable(MeterProvider(metric_readers=[reader]), queue_sample_interval=0.5)
    try:
        yield reader
    finally:
        telemetry.metrics.disable()


@pytest.fixture
async def worker(
    reader: InMemoryMetricReader, storage_account: StorageAccount, task_hub_name: str
) -> AsyncIterator[Worker]:
    settings = WorkerSettings(task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1))
    worker = Worker(storage_account, settings)
    worker.add_orchestrator(sequence)
    worker.add_orchestrator(failing)
    worker.add_activity(hello)
    worker.add_activity(boom)
    async with worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        yield worker


def _points(reader: InMemoryMetricReader) -> Points:
    out: Points = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)  # histogram
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return out


def _sum(points: Points, name: str, **match: str) -> float:
    return sum(v for a, v in points.get(name, []) if all(a.get(k) == w for k, w in match.items()))


async def test_worker_metrics_on_azurite(
    reader: InMemoryMetricReader, worker: Worker, storage_account: StorageAccount, task_hub_name: str
) -> None:
    names = TaskHubNames(task_hub_name, 4)
    async with await TaskHubClient.open(storage_account, task_hub_name) as client:
        ok = await client.schedule_new_orchestration("sequence")
        bad = await client.schedule_new_orchestration("failing")
        assert (await client.wait_for_completion(ok, timeout=60)).runtime_status == OrchestrationStatus.Completed
        assert (await client.wait_for_completion(bad, timeout=60)).runtime_status == OrchestrationStatus.Failed
    async with storage_account.queue_service() as queues:
        await queues.get_queue_client(names.work_item_queue).send_message("not a task message")

    def poisoned() -> bool:
        return _sum(_points(reader), "durable_azstorage.poison_messages") == 1

    await eventually(poisoned, timeout=30, message="the undecodable work item is quarantined")
    points = _points(reader)

    transactions = points["durable_azstorage.storage.transactions"]
    assert _sum(points, "durable_azstorage.storage.transactions", service="queue", operation="PutMessage") >= 4
    tx = "durable_azstorage.storage.transactions"
    assert _sum(points, tx, service="table", operation="EntityGroupTransaction") >= 2
    assert {a["service"] for a, _ in transactions} >= {"queue", "table"}
    assert "unknown" not in {a["service"] for a, _ in transactions}

    assert _sum(points, "durable_azstorage.work_items", kind="activity", outcome="ok") >= 4  # 3 hellos + boom
    assert _sum(points, "durable_azstorage.work_items", kind="orchestration") >= 5
    durations = [v for a, v in points["durable_azstorage.work_item.duration"] if a["kind"] == "activity"]
    assert sum(count for count, _ in durations) >= 4 and all(total > 0 for _, total in durations)

    assert _sum(points, "durable_azstorage.orchestrations.completed", status="Completed",
                **{"durabletask.task.name": "sequence"}) == 1
    assert _sum(points, "durable_azstorage.orchestrations.completed", status="Failed",
                **{"durabletask.task.name": "failing"}) == 1
    assert _sum(points, "durable_azstorage.poison_messages", queue=names.work_item_queue) == 1

    def gauges_sampled() -> bool:
        current = _points(reader)
        partitions = {a.get("partition") for a, _ in current.get("durable_azstorage.queue.depth", [])}
        return partitions == {"00", "01", "02", "03", "workitems"}

    await eventually(gauges_sampled, timeout=30, message="queue gauges sampled for every owned partition")
    points = _points(reader)
    ages = points["durable_azstorage.queue.oldest_message_age"]
    assert len(ages) == 5 and all(age >= 0 for _, age in ages)
    (owned,) = points["durable_azstorage.partitions.owned"]
    assert owned[1] == 4 and owned[0]["task_hub"] == names.task_hub


async def test_metrics_off_leave_the_account_alone(storage_account: StorageAccount) -> None:
    """Off: no hook is installed, so a worker's storage requests pay nothing for metrics."""
    assert not telemetry.metrics.is_enabled()
    assert telemetry.metrics.instrument_account(storage_account) is storage_account


async def test_a_stand_alone_client_counts_its_requests_once(
    reader: InMemoryMetricReader, storage_account: StorageAccount, task_hub_name: str
) -> None:
    """A process with no worker (a client, the HTTP API, the dashboard) reports what it costs too."""
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()  # uncounted set-up
    account = telemetry.metrics.instrument_account(storage_account)
    assert telemetry.metrics.instrument_account(account) is account  # a second hook would count twice
    async with await TaskHubClient.open(account, task_hub_name) as client:
        instance_id = await client.schedule_new_orchestration("sequence")
        state = await client.get_orchestration_state(instance_id)
        assert state is not None and state.runtime_status == OrchestrationStatus.Pending
    points = _points(reader)
    tx = "durable_azstorage.storage.transactions"
    assert _sum(points, tx, service="queue", operation="PutMessage") == 1  # the start message, counted once
    assert _sum(points, tx, service="table") >= 2  # the Pending row and the status read
