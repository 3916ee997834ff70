"""Every TaskHubClient operation on Azurite, with a real in-process worker where one is needed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import escape_partition_key
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import InstanceAlreadyExistsError, InstanceNotFoundError, InvalidInstanceStateError
from durable_azstorage.model import EventType, OrchestrationStatus, utc_now
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources
from durable_azstorage.worker import Worker
from tests.helpers import eventually

_FLAKY_CALLS: dict[str, int] = {}


def echo(ctx: task.ActivityContext, value: Any) -> Any:
    return value


def flaky(ctx: task.ActivityContext, key: str) -> str:
    """Fails on its first call per key, succeeds afterwards: what a rewind should fix."""
    _FLAKY_CALLS[key] = _FLAKY_CALLS.get(key, 0) + 1
    if _FLAKY_CALLS[key] == 1:
        raise RuntimeError("first call fails")
    return f"ok {key}"


def echo_orch(ctx: task.OrchestrationContext, value: Any) -> Generator[task.Task[Any], Any, Any]:
    return (yield ctx.call_activity(echo, input=value))


def flaky_orch(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    first = yield ctx.call_activity(echo, input="before")
    second = yield ctx.call_activity(flaky, input=key)
    return [first, second]


def flaky_parent(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    return {"child": (yield ctx.call_sub_orchestrator(flaky_orch, input=key))}


def waiter(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    return (yield ctx.wait_for_external_event("go"))


@pytest.fixture
async def client(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[TaskHubClient]:
    await TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create()
    async with await TaskHubClient.open(storage_account, task_hub_name) as c:
        yield c


@pytest.fixture
async def worker(storage_account: StorageAccount, task_hub_name: str, client: TaskHubClient) -> AsyncIterator[Worker]:
    settings = WorkerSettings(
        task_hub_name=task_hub_name,
        max_queue_polling_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(seconds=2),
    )
    w = Worker(storage_account, settings)
    for fn in (echo_orch, flaky_orch, flaky_parent, waiter):
        w.add_orchestrator(fn)
    for activity in (echo, flaky):
        w.add_activity(activity)
    async with w:
        await eventually(lambda: len(w.owned_partitions) == 4, timeout=30, message="partitions claimed")
        yield w


async def test_unknown_instance_errors(client: TaskHubClient) -> None:
    assert await client.get_orchestration_state("nope") is None
    for call in (
        client.get_orchestration_history("nope"),
        client.purge_instance("nope"),
        client.restart("nope"),
        client.rewind("nope"),
        client.terminate("nope"),
        client.raise_event("nope", "e"),
    ):
        with pytest.raises(InstanceNotFoundError):
            await call


async def test_start_dedupe_and_query_pages_without_worker(client: TaskHubClient) -> None:
    for i in range(7):
        await client.schedule_new_orchestration("echo_orch", input=i, instance_id=f"q-{i}")
    await client.schedule_new_orchestration("echo_orch", instance_id="other")
    with pytest.raises(InstanceAlreadyExistsError):
        await client.schedule_new_orchestration("echo_orch", instance_id="q-1")
    page = await client.query_instances(instance_id_prefix="q-", page_size=3)
    assert len(page.instances) <= 3 and page.continuation_token
    ids = [s.instance_id async for s in client.list_instances(instance_id_prefix="q-", page_size=3)]
    assert sorted(ids) == [f"q-{i}" for i in range(7)]
    pending = [s async for s in client.list_instances(runtime_status=[OrchestrationStatus.Pending])]
    assert len(pending) == 8
    assert [s async for s in client.list_instances(runtime_status=[OrchestrationStatus.Completed])] == []
    with pytest.raises(ValueError):
        await client.query_instances(continuation_token="not-a-token!")
    # Purge by filter never touches non-terminal instances, even when asked to.
    purged = await client.purge_instances(
        created_from=utc_now() - timedelta(hours=1), runtime_status=[OrchestrationStatus.Pending]
    )
    assert purged.instances_deleted == 0
    # Rewind and restart need the right state.
    with pytest.raises(InvalidInstanceStateError):
        await client.rewind("q-0")
    with pytest.raises(InvalidInstanceStateError):
        await client.resume("q-0")


async def test_payload_urls(client: TaskHubClient) -> None:
    urls = client.create_http_management_payload("a b", "http://h:7071", code="k")
    assert urls["id"] == "a b"
    assert urls["statusQueryGetUri"] == (
        f"http://h:7071/runtime/webhooks/durabletask/instances/a%20b?taskHub={client.task_hub_name}"
        "&connection=Storage&code=k"
    )
    assert set(urls) == {
        "id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
        "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri",
    }
    assert "/raiseEvent/{eventName}?" in urls["sendEventPostUri"]


async def test_history_purge_restart(worker: Worker, client: TaskHubClient) -> None:
    big = "x" * 100_000  # offloaded to blobs: purge must remove them too
    instance_id = await client.schedule_new_orchestration("echo_orch", input=big, instance_id="purge me 1")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed and json.loads(state.output or "") == big
    history = await client.get_orchestration_history(instance_id)
    types = [e.event_type for e in history]
    assert types[:2] == [EventType.OrchestratorStarted, EventType.ExecutionStarted]
    assert EventType.TaskCompleted in types
    assert types[-1] == EventType.OrchestratorCompleted

    restarted = await client.restart(instance_id, new_instance_id=True)
    assert restarted != instance_id
    again = await client.wait_for_completion(restarted, timeout=60)
    assert json.loads(again.output or "") == big
    same = await client.restart(instance_id)
    assert same == instance_id
    await client.wait_for_completion(instance_id, timeout=60)

    prefixes = (f"{instance_id}/", f"{escape_partition_key(instance_id)}/")
    blobs_before = [b.name async for b in client._hub.payloads._container.list_blobs()]
    assert any(name.startswith(prefixes) for name in blobs_before)
    result = await client.purge_instance(instance_id)
    assert result.instances_deleted == 1 and result.rows_deleted > 0
    assert await client.get_orchestration_state(instance_id) is None
    assert not (await client._hub.history.load(instance_id)).events
    blobs_after = [b.name async for b in client._hub.payloads._container.list_blobs()]
    assert not [name for name in blobs_after if name.startswith(prefixes)]
    with pytest.raises(InstanceNotFoundError):
        await client.purge_instance(instance_id)

    # Purge by filter: the completed restarted instance goes, a running one stays.
    running = await client.schedule_new_orchestration("waiter")
    await eventually(
        lambda: _status_is(client, running, OrchestrationStatus.Running), message="waiter running"
    )
    purged = await client.purge_instances(created_from=utc_now() - timedelta(hours=1))
    assert purged.instances_deleted == 1
    assert await client.get_orchestration_state(restarted) is None
    assert await client.get_orchestration_state(running) is not None


async def _status_is(client: TaskHubClient, instance_id: str, status: OrchestrationStatus) -> bool:
    state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
    return state is not None and state.runtime_status == status


async def test_suspend_resume_raise_terminate(worker: Worker, client: TaskHubClient) -> None:
    instance_id = await client.schedule_new_orchestration("waiter")
    await eventually(lambda: _status_is(client, instance_id, OrchestrationStatus.Running), message="running")
    await client.suspend(instance_id, "pause")
    await eventually(lambda: _status_is(client, instance_id, OrchestrationStatus.Suspended), message="suspended")
    await client.raise_event(instance_id, "go", {"v": 1})
    await client.resume(instance_id, "go on")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert json.loads(state.output or "") == {"v": 1}
    with pytest.raises(InvalidInstanceStateError):
        await client.terminate(instance_id)

    other = await client.schedule_new_orchestration("waiter")
    await client.terminate(other, "stop")
    state = await client.wait_for_completion(other, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Terminated


async def test_rewind_reruns_the_failed_activity(worker: Worker, client: TaskHubClient) -> None:
    instance_id = await client.schedule_new_orchestration("flaky_orch", input="single")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Failed
    leaves = await client.rewind(instance_id, "fixed it")
    assert leaves == [instance_id]
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed, state.output
    assert json.loads(state.output or "") == ["before", "ok single"]
    assert _FLAKY_CALLS["single"] == 2
    with pytest.raises(InvalidInstanceStateError):
        await client.rewind(instance_id)


async def test_rewind_failed_sub_orchestration(worker: Worker, client: TaskHubClient) -> None:
    instance_id = await client.schedule_new_orchestration("flaky_parent", input="nested")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Failed
    leaves = await client.rewind(instance_id)
    assert len(leaves) == 1 and leaves[0] != instance_id
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed, state.output
    assert json.loads(state.output or "") == {"child": ["before", "ok nested"]}


def test_sync_client_facade(storage_account: StorageAccount, task_hub_name: str) -> None:
    import asyncio

    import durable_azstorage

    asyncio.run(TaskHubResources(storage_account, TaskHubNames(task_hub_name)).create())
    with durable_azstorage.TaskHubClient(storage_account, task_hub_name) as sync:
        ids = [sync.schedule_new_orchestration("echo_orch", input=i, instance_id=f"s-{i}") for i in range(5)]
        state = sync.get_orchestration_state("s-0")
        assert state is not None and state.runtime_status == OrchestrationStatus.Pending and state.input == "0"
        page = sync.query_instances(page_size=2)
        assert len(page.instances) <= 2
        assert sorted(s.instance_id for s in sync.list_instances(page_size=2)) == ids
        with pytest.raises(InstanceNotFoundError):
            sync.purge_instance("missing")
        assert sync.purge_instance("s-4").instances_deleted == 1
        assert sync.create_http_management_payload("s-0", "http://x")["id"] == "s-0"


async def test_a_start_row_written_first_by_a_worker_is_not_a_warning(
    client: TaskHubClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The client's Pending write loses to a fast worker's row (the DTAS race): no warning for that;
    a row of another execution (a second start of the same id won) still warns."""
    import dataclasses

    instances = client.storage.instances
    original = instances.create_pending
    rival: dict[str, Any] = {}

    async def worker_wrote_first(started: Any, **kwargs: Any) -> bool:
        if rival:
            other = dataclasses.replace(
                started,
                orchestration_instance=dataclasses.replace(started.orchestration_instance, execution_id="other"),
            )
            await original(other, **kwargs)
        else:
            await original(started, **kwargs)
        return False  # the client's own write found a row there already

    monkeypatch.setattr(instances, "create_pending", worker_wrote_first)
    with caplog.at_level("DEBUG", logger="durable_azstorage.client"):
        await client.schedule_new_orchestration("echo_orch", instance_id="raced-by-worker")
        rival["on"] = True
        await client.schedule_new_orchestration("echo_orch", instance_id="raced-by-client")
    events = [(r.getMessage(), r.levelname, getattr(r, "instance_id", None)) for r in caplog.records]
    assert ("client.start_row_written_by_worker", "DEBUG", "raced-by-worker") in events
    assert ("client.start_race_lost", "WARNING", "raced-by-client") in events
    assert not any(e[0] == "client.start_race_lost" and e[2] == "raced-by-worker" for e in events)
