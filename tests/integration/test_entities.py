"""Durable entities on Azurite: a real worker, the client, and the stored DTAS/Core format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from durabletask import entities, task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec import entity_codec
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import EventType, ExecutionStartedEvent, OrchestrationStatus
from durable_azstorage.model.entities import EntityId
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.worker import Worker
from tests.helpers import eventually
from tests.sidecar_support import HOSTING_MODES, HostedWorker

# --------------------------------------------------------------------------- user code


class Counter(entities.DurableEntity):
    """The seeds' Counter: Add / Reset / Get (method names are the operation names)."""

    def add(self, amount: int) -> int:
        value: int = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def reset(self) -> None:
        self.set_state(0)

    def get(self) -> int:
        value: int = self.get_state(int, 0)
        return value

    def add_then_fail(self, amount: int) -> None:
        self.set_state(self.get_state(int, 0) + amount)
        raise ValueError("this operation always fails")


def account(ctx: entities.EntityContext, input: Any) -> Any:
    """A function entity: a bank account balance."""
    balance: int = ctx.get_state(int, 0)
    if ctx.operation == "deposit":
        ctx.set_state(balance + int(input))
    elif ctx.operation == "withdraw":
        if int(input) > balance:
            raise ValueError("insufficient funds")
        ctx.set_state(balance - int(input))
    elif ctx.operation == "balance":
        return balance
    elif ctx.operation == "delete":
        ctx.set_state(None)
    return None


class Blob(entities.DurableEntity):
    def put(self, text: str) -> int:
        self.set_state(text)
        return len(text)

    def size(self) -> int:
        return len(self.get_state(str, ""))


def caller(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    counter = entities.EntityInstanceId("counter", key)
    first = yield ctx.call_entity(counter, "add", 5)
    ctx.signal_entity(counter, "add", 10)
    total = yield ctx.call_entity(counter, "get")
    try:
        yield ctx.call_entity(counter, "add_then_fail", 1000)
        failed = None
    except task.TaskFailedError as exc:
        failed = str(exc)
    after = yield ctx.call_entity(counter, "get")
    return {"first": first, "total": total, "failed": failed, "after": after}


def transfer(ctx: task.OrchestrationContext, spec: dict[str, Any]) -> Generator[task.Task[Any], Any, bool]:
    source = entities.EntityInstanceId("account", spec["from"])
    target = entities.EntityInstanceId("account", spec["to"])
    with (yield ctx.lock_entities([target, source])):
        balance = yield ctx.call_entity(source, "balance")
        if balance < spec["amount"]:
            return False
        yield ctx.call_entity(source, "withdraw", spec["amount"])
        yield ctx.call_entity(target, "deposit", spec["amount"])
    return True


def lock_then_fail(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, None]:
    with (yield ctx.lock_entities([entities.EntityInstanceId("account", key)])):
        raise RuntimeError("failed while holding the lock")


def relay(ctx: entities.EntityContext, input: Any) -> Any:
    """A function entity that forwards to another entity and starts an orchestration."""
    if ctx.operation == "forward":
        ctx.signal_entity(entities.EntityInstanceId("counter", input["key"]), "add", input["amount"])
        ctx.schedule_new_orchestration("signal_once", input=input["key"], instance_id=input["child"])
    return None


def signal_later(ctx: task.OrchestrationContext, key: str) -> None:
    due = ctx.current_utc_datetime + timedelta(seconds=3)
    ctx.signal_entity(entities.EntityInstanceId("counter", key), "add", 7, signal_time=due)


def signal_once(ctx: task.OrchestrationContext, key: str) -> None:
    ctx.signal_entity(entities.EntityInstanceId("counter", key), "add", 1)


# --------------------------------------------------------------------------- fixtures


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
    for fn in (caller, transfer, signal_once, lock_then_fail, signal_later):
        host.add_orchestrator(fn)
    host.add_entity(Counter)
    host.add_entity(account)
    host.add_entity(Blob)
    host.add_entity(relay)
    async with host as worker:
        await eventually(lambda: len(worker.owned_partitions) == 4, timeout=30, message="partitions claimed")
        client = await TaskHubClient.open(storage_account, task_hub_name)
        async with client:
            yield worker, client


async def _state_of(client: TaskHubClient, entity: str, key: str) -> Any:
    metadata = await client.get_entity(entity, key=key)
    return None if metadata is None else metadata.state_value()


async def _wait_state(client: TaskHubClient, entity: str, key: str, expected: Any, timeout: float = 30) -> None:
    async def probe() -> bool:
        return bool(await _state_of(client, entity, key) == expected)

    await eventually(probe, timeout=timeout, message=f"@{entity}@{key} == {expected!r}")


# --------------------------------------------------------------------------- tests


async def test_counter_signals_and_reads(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    worker, client = worker_and_client
    for amount in (1, 2, 3):
        await client.signal_entity("Counter", "add", amount, key="c1")
    await _wait_state(client, "counter", "c1", 6)
    await client.signal_entity(EntityId.of("counter", "c1"), "reset")
    await _wait_state(client, "counter", "c1", 0)
    assert await client.read_entity_state("@counter@c1") == (True, 0)
    assert await client.read_entity_state("counter", key="nope") == (False, None)

    # The stored form is Core's: an orchestration instance with a rewritten 3-event history.
    record = await worker.hub.instances.get("@counter@c1", fetch_input=True, fetch_output=False)
    assert record is not None
    row = record.state
    assert row.runtime_status == OrchestrationStatus.Running
    assert row.name == "@counter@c1"
    assert row.custom_status == '{"entityExists":true}'
    scheduler = json.loads(row.input or "")
    assert scheduler["exists"] is True and scheduler["state"] == "0" and "sorter" in scheduler
    history = await worker.hub.history.load("@counter@c1")
    assert [e.event_type for e in history.events] == [
        EventType.OrchestratorStarted,
        EventType.ExecutionStarted,
        EventType.OrchestratorCompleted,
    ]
    started = history.events[1]
    assert isinstance(started, ExecutionStartedEvent) and started.input == row.input
    assert history.execution_id == row.orchestration_instance.execution_id

    page = await client.list_entities(name="counter")
    assert [(m.entity_id.instance_id, m.state) for m in page.entities] == [("@counter@c1", "0")]


async def test_call_entity_and_failing_operation(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("caller", input="k")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed, state.output
    output = json.loads(state.output or "null")
    assert output["first"] == 5 and output["total"] == 15
    assert "this operation always fails" in output["failed"]
    # The failed operation's state change was rolled back.
    assert output["after"] == 15
    assert await _state_of(client, "counter", "k") == 15


async def test_lock_two_entities_bank_transfer(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    await client.signal_entity("account", "deposit", 100, key="alice")
    await client.signal_entity("account", "deposit", 100, key="bob")
    await _wait_state(client, "account", "alice", 100)
    await _wait_state(client, "account", "bob", 100)
    specs = [{"from": "alice", "to": "bob", "amount": 7}, {"from": "bob", "to": "alice", "amount": 5}] * 6
    ids = [await client.schedule_new_orchestration("transfer", input=spec) for spec in specs]
    for instance_id in ids:
        done = await client.wait_for_completion(instance_id, timeout=90)
        assert done.runtime_status == OrchestrationStatus.Completed, done.output
    alice, bob = await _state_of(client, "account", "alice"), await _state_of(client, "account", "bob")
    assert alice + bob == 200
    assert (alice, bob) == (100 - 6 * 7 + 6 * 5, 100 + 6 * 7 - 6 * 5)
    for key in ("alice", "bob"):
        # The release is a message the last holder sent as it finished: the entity applies it in
        # its own next batch, which may come after the holder's completion is visible.
        async def released(key: str = key) -> bool:
            metadata = await client.get_entity("account", key=key)
            return metadata is not None and metadata.locked_by is None

        await eventually(released, timeout=30, message=f"{key} unlocked after the last transfer")


async def test_large_state_goes_to_blobs(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    worker, client = worker_and_client
    text = "".join(f"{i:08d}" for i in range(12_000))  # 96 KB of JSON string, over a 64 KB column
    await client.signal_entity("blob", "put", text, key="big")
    await _wait_state(client, "blob", "big", text)
    raw = await worker.hub.instances.get("@blob@big", fetch_input=False, fetch_output=False)
    assert raw is not None
    history = await worker.hub.history.load("@blob@big")
    assert history.blob_names, "the scheduler state was offloaded to a blob"
    # A second batch still reads the offloaded state.
    await client.signal_entity("blob", "put", text + "!", key="big")
    await _wait_state(client, "blob", "big", text + "!")


async def test_scheduled_signal(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    due = datetime.now(timezone.utc) + timedelta(seconds=4)
    await client.signal_entity("counter", "add", 42, key="later", signal_time=due)
    await client.signal_entity("counter", "add", 1, key="later")
    await _wait_state(client, "counter", "later", 1)
    assert datetime.now(timezone.utc) < due, "the immediate signal ran first"
    await _wait_state(client, "counter", "later", 43, timeout=30)
    assert datetime.now(timezone.utc) >= due - timedelta(milliseconds=100)


async def test_signals_from_orchestrations_are_exactly_once(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    ids = [await client.schedule_new_orchestration("signal_once", input="many") for _ in range(40)]
    for instance_id in ids:
        await client.wait_for_completion(instance_id, timeout=60)
    await _wait_state(client, "counter", "many", 40)


async def test_list_and_clean_entity_storage(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    await client.signal_entity("account", "deposit", 1, key="x")
    await _wait_state(client, "account", "x", 1)
    await client.signal_entity("account", "delete", key="x")

    async def gone() -> bool:
        return await client.get_entity("account", key="x") is None

    await eventually(gone, message="entity deleted")
    transient = await client.list_entities(name="account", include_transient=True)
    assert [m.entity_id.key for m in transient.entities] == ["x"]
    assert (await client.list_entities(name="account")).entities == []
    result = await client.clean_entity_storage(reorder_window=timedelta(0))
    assert result.empty_entities_removed == 1
    assert (await client.list_entities(name="account", include_transient=True)).entities == []
    # A lock held by an instance that no longer runs is released.
    assert entity_codec.decode_entity_status('{"entityExists":true,"lockedBy":"gone"}') is not None


async def test_lock_released_when_the_orchestration_fails(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("lock_then_fail", input="held")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Failed
    await client.signal_entity("account", "deposit", 3, key="held")  # would wait forever on a stuck lock
    await _wait_state(client, "account", "held", 3)
    metadata = await client.get_entity("account", key="held")
    assert metadata is not None and metadata.locked_by is None


async def test_entity_signals_entity_and_starts_orchestration(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    await client.signal_entity("relay", "forward", {"key": "relayed", "amount": 5, "child": "child-1"}, key="r")
    # 5 from the relay's signal, 1 from the orchestration it started.
    await _wait_state(client, "counter", "relayed", 6)
    child = await client.wait_for_completion("child-1", timeout=60)
    assert child.runtime_status == OrchestrationStatus.Completed


async def test_scheduled_signal_from_an_orchestration(worker_and_client: tuple[Worker, TaskHubClient]) -> None:
    _, client = worker_and_client
    instance_id = await client.schedule_new_orchestration("signal_later", input="orch-later")
    state = await client.wait_for_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.Completed
    history = await client.get_orchestration_history(instance_id)
    sent = [e for e in history if e.event_type == EventType.EventSent]
    assert len(sent) == 1 and (sent[0].name or "").startswith("op@")  # type: ignore[attr-defined]
    await _wait_state(client, "counter", "orch-later", 7, timeout=30)
