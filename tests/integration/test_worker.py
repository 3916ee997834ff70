"""A real worker on Azurite running durabletask SDK orchestrations end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.sidecar_support import HOSTING_MODES, HostedWorker


def say_hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


async def double(ctx: task.ActivityContext, value: int) -> int:
    return value * 2


def fail(ctx: task.ActivityContext, message: str) -> None:
    raise ValueError(message)


def chain(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results


def fan_out(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    values = yield task.when_all([ctx.call_activity(double, input=i) for i in range(count)])
    return sum(values)


def parent(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    child = yield ctx.call_sub_orchestrator(chain, input=None)
    return {"child": child}


def approval(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    ctx.set_custom_status("waiting")
    approved = ctx.wait_for_external_event("approve")
    timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(minutes=10))
    winner = yield task.when_any([approved, timeout])
    return "approved" if winner == approved else "timed out"


def short_timer(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    return "done"


def counter(ctx: task.OrchestrationContext, value: int) -> Generator[task.Task[Any], Any, int]:
    if value >= 3:
        return value
    yield ctx.create_timer(ctx.current_utc_datetime)
    ctx.continue_as_new(value + 1)
    return value


def failing(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, None]:
    yield ctx.call_activity(fail, input="boom")


@pytest.fixture(params=HOSTING_MODES)
async def worker_and_client(
    storage_account: StorageAccount, task_hub_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Worker, TaskHubClient]]:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    host = HostedWorker(storage_account, settings, request.param)  # in-process, or the SDK via the sidecar
    for fn in (chain, fan_out, parent, approval, short_timer, counter, failing):
        host.add_orchestrator(fn)
    for activity in (say_hello, double, fail):
        host.add_activity(activity)
    async with host as worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        client = await TaskHubClient.open(storage_account, task_hub_name)
        async with client:
            yield worker, client


async def _run(client: TaskHubClient, name: str, input: Any = None) -> Any:
    instance_id = await client.schedule_new_orchestration(name, input=input)
    state = await client.wait_for_completion(instance_id, timeout=60)
    return state


async def test_chain_of_activities(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "chain")
    assert state.runtime_status == OrchestrationStatus.Completed
    assert json.loads(state.output) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_fan_out_fan_in(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "fan_out", 50)
    assert state.runtime_status == OrchestrationStatus.Completed
    assert json.loads(state.output) == sum(i * 2 for i in range(50))


async def test_sub_orchestration(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "parent")
    assert json.loads(state.output) == {"child": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]}


async def test_external_event_and_custom_status(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("approval")

    async def waiting() -> bool:
        state = await client.get_orchestration_state(instance_id)
        return state is not None and state.custom_status == '"waiting"'

    await eventually(waiting, message="custom status set")
    await client.raise_event(instance_id, "approve", True)
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert json.loads(state.output) == "approved"


async def test_durable_timer(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "short_timer")
    assert json.loads(state.output) == "done"


async def test_continue_as_new(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "counter", 0)
    assert state.runtime_status == OrchestrationStatus.Completed
    assert json.loads(state.output) == 3


async def test_activity_failure_fails_orchestration(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    state = await _run(client, "failing")
    assert state.runtime_status == OrchestrationStatus.Failed
    assert "boom" in (state.output or "")


async def test_terminate_running_instance(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("approval")

    async def running() -> bool:
        state = await client.get_orchestration_state(instance_id)
        return state is not None and state.runtime_status == OrchestrationStatus.Running

    await eventually(running, message="instance running")
    await client.terminate(instance_id, "stop it")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Terminated
    assert json.loads(state.output) == "stop it"


async def test_suspend_and_resume(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("approval")

    async def status_is(status: OrchestrationStatus) -> bool:
        state = await client.get_orchestration_state(instance_id)
        return state is not None and state.runtime_status == status

    await eventually(lambda: status_is(OrchestrationStatus.Running), message="running")
    await client.suspend(instance_id, "pause")
    await eventually(lambda: status_is(OrchestrationStatus.Suspended), message="suspended")
    await client.raise_event(instance_id, "approve", True)  # held while suspended
    await client.resume(instance_id, "go")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert json.loads(state.output) == "approved"


async def test_event_raised_before_start_is_not_lost(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    from datetime import datetime, timezone

    start_at = datetime.now(timezone.utc) + timedelta(seconds=3)
    instance_id = await client.schedule_new_orchestration("approval", start_at=start_at)
    await client.raise_event(instance_id, "approve", True)
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert json.loads(state.output) == "approved"


async def test_terminate_pending_instance(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    from datetime import datetime, timezone

    start_at = datetime.now(timezone.utc) + timedelta(seconds=4)
    instance_id = await client.schedule_new_orchestration("chain", start_at=start_at)
    await client.terminate(instance_id, "never mind")
    state = await client.wait_for_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.Terminated

    async def still_terminated() -> bool:  # the delayed start must not resurrect it
        s = await client.get_orchestration_state(instance_id)
        return s is not None and s.runtime_status == OrchestrationStatus.Terminated and s.last_updated_time is not None

    await eventually(still_terminated)


async def test_stale_instance_row_of_a_finished_instance_is_repaired(
    worker_and_client: tuple[Worker, TaskHubClient], storage_account: StorageAccount, task_hub_name: str
) -> None:
    """Crash window: history says Completed, the Instances row still says Running."""
    _, client = worker_and_client
    state = await _run(client, "chain")
    assert state.runtime_status == OrchestrationStatus.Completed
    from durable_azstorage.codec.partitioning import escape_partition_key

    async with storage_account.table_service() as tables:
        row = tables.get_table_client(f"{task_hub_name}Instances")
        await row.upsert_entity(
            {"PartitionKey": escape_partition_key(state.instance_id), "RowKey": "", "RuntimeStatus": "Running"}
        )
    await client.raise_event(state.instance_id, "late", 1)  # any message for the instance

    async def repaired() -> bool:
        current = await client.get_orchestration_state(state.instance_id)
        return current is not None and current.runtime_status == OrchestrationStatus.Completed

    await eventually(repaired, timeout=30, message="Instances row repaired from history")


async def test_terminate_suspended_instance(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("approval")

    async def status_is(status: OrchestrationStatus) -> bool:
        state = await client.get_orchestration_state(instance_id)
        return state is not None and state.runtime_status == status

    await eventually(lambda: status_is(OrchestrationStatus.Running), message="running")
    await client.suspend(instance_id)
    await eventually(lambda: status_is(OrchestrationStatus.Suspended), message="suspended")
    await client.terminate(instance_id, "bye")
    state = await client.wait_for_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.Terminated


SLOW_RUNS: list[str] = []


def slow(ctx: task.ActivityContext, seconds: float) -> str:
    SLOW_RUNS.append(ctx.orchestration_id)
    import time

    time.sleep(seconds)  # longer than the work-item visibility timeout
    return "slow done"


def slow_orchestration(ctx: task.OrchestrationContext, seconds: float) -> Generator[task.Task[Any], Any, str]:
    return (yield ctx.call_activity(slow, input=seconds))


async def test_long_activity_keeps_its_lock(storage_account: StorageAccount, task_hub_name: str) -> None:
    """Visibility is renewed while an activity runs, so no other worker runs it again."""
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        work_item_queue_visibility_timeout=timedelta(seconds=2),
    )
    first, second = (
        Worker(storage_account, settings.with_changes(worker_id="one")),
        Worker(storage_account, settings.with_changes(worker_id="two")),
    )
    for worker in (first, second):
        worker.add_orchestrator(slow_orchestration)
        worker.add_activity(slow)
    async with first, second, await TaskHubClient.open(storage_account, task_hub_name) as client:
        instance_id = await client.schedule_new_orchestration("slow_orchestration", input=6)
        state = await client.wait_for_completion(instance_id, timeout=60)
    assert json.loads(state.output) == "slow done"
    assert SLOW_RUNS.count(instance_id) == 1
