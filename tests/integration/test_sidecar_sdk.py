"""The durabletask Python SDK's own worker and client, unchanged, against the sidecar on Azurite.

One sidecar and one SDK worker serve every test of the module (as one deployed app would);
each test uses fresh instance ids. Everything goes through gRPC: the SDK never sees storage.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import entities, task

from durable_azstorage.connection import StorageAccount
from tests.sidecar_support import SidecarThread, fast_settings, sdk_worker

pytestmark = pytest.mark.integration

COMPLETED = dt_client.OrchestrationStatus.COMPLETED
FAILED = dt_client.OrchestrationStatus.FAILED
TERMINATED = dt_client.OrchestrationStatus.TERMINATED


# ---------------------------------------------------------------------------- user code
def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def double(ctx: task.ActivityContext, value: int) -> int:
    return value * 2


def flaky(ctx: task.ActivityContext, marker: str) -> str:
    # Fails until the test creates the marker (rewind re-runs it).
    if not FLAGS.get(marker):
        raise ValueError(f"not yet: {marker}")
    return "fixed"


def big(ctx: task.ActivityContext, size: int) -> str:
    return "x" * size


FLAGS: dict[str, bool] = {}


def chain(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, list[str]]:
    out = []
    for city in ("Tokyo", "Seattle", "London"):
        out.append((yield ctx.call_activity(hello, input=city)))
    return out


def fan_out(ctx: task.OrchestrationContext, count: int) -> Generator[task.Task[Any], Any, int]:
    values = yield task.when_all([ctx.call_activity(double, input=i) for i in range(count)])
    return sum(values)


def parent(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    child = yield ctx.call_sub_orchestrator(chain, input=None)
    return {"child": child}


def approval(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    ctx.set_custom_status("waiting")
    approved = ctx.wait_for_external_event("approve")
    timeout = ctx.create_timer(ctx.current_utc_datetime + timedelta(minutes=10))
    winner = yield task.when_any([approved, timeout])
    return approved.get_result() if winner == approved else "timed out"


def short_timer(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, str]:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    return "done"


def counter(ctx: task.OrchestrationContext, value: int) -> Generator[task.Task[Any], Any, int]:
    if value >= 3:
        return value
    yield ctx.create_timer(ctx.current_utc_datetime)
    ctx.continue_as_new(value + 1)
    return value


def fails_then_fixed(ctx: task.OrchestrationContext, marker: str) -> Generator[task.Task[Any], Any, str]:
    first = yield ctx.call_activity(hello, input="before")
    second = yield ctx.call_activity(flaky, input=marker)
    return f"{first}/{second}"


def failing(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, None]:
    yield ctx.call_activity(flaky, input="never-" + ctx.instance_id)


def large(ctx: task.OrchestrationContext, size: int) -> Generator[task.Task[Any], Any, int]:
    payload = yield ctx.call_activity(big, input=size)
    echoed = yield ctx.call_activity(hello, input=payload)
    return len(echoed)


def versioned(ctx: task.OrchestrationContext, _: Any) -> str:
    return f"version={ctx.version}"


def waits_forever(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, None]:
    yield ctx.wait_for_external_event("never")


def parent_of_waiter(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, None]:
    yield ctx.call_sub_orchestrator(waits_forever, instance_id=ctx.instance_id + "-child")


class Counter(entities.DurableEntity):
    def add(self, amount: int) -> int:
        value = self.get_state(int, 0) + amount
        self.set_state(value)
        return value

    def get(self) -> int:
        return int(self.get_state(int, 0))

    def fail(self, _: Any = None) -> None:
        self.set_state(-999)
        raise ValueError("entity says no")


def bank(ctx: entities.EntityContext, input: Any) -> Any:
    state = ctx.get_state(int, 0)
    if ctx.operation == "deposit":
        ctx.set_state(state + int(input))
    elif ctx.operation == "balance":
        return state
    elif ctx.operation == "delete":
        ctx.set_state(None)
    return None


def uses_entities(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    counter_id = entities.EntityInstanceId("Counter", key)
    ctx.signal_entity(counter_id, "add", input=5)
    total = yield ctx.call_entity(counter_id, "add", input=10)
    try:
        yield ctx.call_entity(counter_id, "fail")
        failed = None
    except task.TaskFailedError as exc:
        failed = exc.details.message
    after = yield ctx.call_entity(counter_id, "get")
    return {"total": total, "failed": failed, "after": after}


def locks_entities(ctx: task.OrchestrationContext, key: str) -> Generator[task.Task[Any], Any, Any]:
    a = entities.EntityInstanceId("bank", key + "a")
    b = entities.EntityInstanceId("bank", key + "b")
    with (yield ctx.lock_entities([a, b])):
        yield ctx.call_entity(a, "deposit", input=7)
        yield ctx.call_entity(b, "deposit", input=8)
        total = (yield ctx.call_entity(a, "balance")) + (yield ctx.call_entity(b, "balance"))
    return total


ORCHESTRATORS = [
    chain, fan_out, parent, approval, short_timer, counter, fails_then_fixed, failing,
    large, versioned, waits_forever, parent_of_waiter, uses_entities, locks_entities,
]


def register(worker: Any) -> None:
    for fn in ORCHESTRATORS:
        worker.add_orchestrator(fn)
    for fn in (hello, double, flaky, big):
        worker.add_activity(fn)
    worker.add_entity(Counter)
    worker.add_entity(bank)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sidecar(storage_account: StorageAccount) -> Iterator[SidecarThread]:
    hub = "sdk" + uuid.uuid4().hex[:12]
    with SidecarThread(storage_account, fast_settings(hub)) as running, sdk_worker(running.address, register):
        yield running


@pytest.fixture(scope="module")
def client(sidecar: SidecarThread) -> Iterator[dt_client.TaskHubGrpcClient]:
    c = dt_client.TaskHubGrpcClient(host_address=sidecar.address)
    yield c
    c.close()


def _id() -> str:
    return "i" + uuid.uuid4().hex[:12]


def run(client: dt_client.TaskHubGrpcClient, orchestrator: Any, input: Any = None, **kwargs: Any) -> Any:
    instance_id = client.schedule_new_orchestration(orchestrator, input=input, instance_id=_id(), **kwargs)
    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None
    return state


# ---------------------------------------------------------------------------- patterns
def test_chain_fan_out_and_sub_orchestration(client: dt_client.TaskHubGrpcClient) -> None:
    state = run(client, chain)
    assert state.runtime_status == COMPLETED
    assert json.loads(state.serialized_output) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert json.loads(run(client, fan_out, 20).serialized_output) == sum(2 * i for i in range(20))
    assert json.loads(run(client, parent).serialized_output)["child"][0] == "Hello Tokyo!"


def test_async_client_and_version(sidecar: SidecarThread, client: dt_client.TaskHubGrpcClient) -> None:
    import asyncio

    async def go() -> Any:
        async_client = dt_client.AsyncTaskHubGrpcClient(host_address=sidecar.address)
        try:
            instance_id = await async_client.schedule_new_orchestration(chain, instance_id=_id())
            return await async_client.wait_for_orchestration_completion(instance_id, timeout=60)
        finally:
            await async_client.close()

    state = asyncio.run(go())
    assert state is not None and json.loads(state.serialized_output)[2] == "Hello London!"
    state = run(client, versioned, version="2.1")
    assert json.loads(state.serialized_output) == "version=2.1"


def test_external_event_custom_status_and_timer(client: dt_client.TaskHubGrpcClient) -> None:
    instance_id = client.schedule_new_orchestration(approval, instance_id=_id())
    started = client.wait_for_orchestration_start(instance_id, timeout=30)
    assert started is not None
    client.raise_orchestration_event(instance_id, "approve", data={"by": "me"})
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state is not None and state.runtime_status == COMPLETED
    assert json.loads(state.serialized_output) == {"by": "me"}
    assert json.loads(state.serialized_custom_status) == "waiting"
    assert json.loads(run(client, short_timer).serialized_output) == "done"
    assert json.loads(run(client, counter, 0).serialized_output) == 3


def test_failure_details_and_rewind(client: dt_client.TaskHubGrpcClient) -> None:
    marker = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration(fails_then_fixed, input=marker, instance_id=_id())
    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None and state.runtime_status == FAILED
    assert state.failure_details is not None
    assert "not yet" in state.failure_details.message
    assert state.failure_details.error_type.endswith("TaskFailedError")
    FLAGS[marker] = True
    client.rewind_orchestration(instance_id, reason="fixed it")
    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None and state.runtime_status == COMPLETED, state
    assert json.loads(state.serialized_output) == "Hello before!/fixed"


def test_start_conflicts_schedule_and_restart(client: dt_client.TaskHubGrpcClient) -> None:
    instance_id = client.schedule_new_orchestration(waits_forever, instance_id=_id())
    with pytest.raises(grpc.RpcError) as info:
        client.schedule_new_orchestration(waits_forever, instance_id=instance_id)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    client.terminate_orchestration(instance_id, output="stop")
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state is not None and state.runtime_status == TERMINATED
    # A start time in the past means now; one in the future waits.
    past = run(client, chain, start_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert past.runtime_status == COMPLETED
    later = datetime.now(timezone.utc) + timedelta(seconds=2)
    scheduled = run(client, chain, start_at=later)
    finished = scheduled.last_updated_at.replace(tzinfo=timezone.utc)
    assert scheduled.runtime_status == COMPLETED and finished >= later - timedelta(seconds=1)
    restarted = client.restart_orchestration(scheduled.instance_id, restart_with_new_instance_id=True)
    assert restarted != scheduled.instance_id
    again = client.wait_for_orchestration_completion(restarted, timeout=60)
    assert again is not None and again.runtime_status == COMPLETED
    same = client.restart_orchestration(scheduled.instance_id)
    assert same == scheduled.instance_id


def test_terminate_recursive_suspend_resume(client: dt_client.TaskHubGrpcClient) -> None:
    instance_id = client.schedule_new_orchestration(parent_of_waiter, instance_id=_id())
    child = instance_id + "-child"

    def child_running() -> bool:
        s = client.get_orchestration_state(child)
        return s is not None and s.runtime_status == dt_client.OrchestrationStatus.RUNNING

    _until(child_running)
    client.suspend_orchestration(instance_id, reason="pause")
    _until(lambda: _status(client, instance_id) == dt_client.OrchestrationStatus.SUSPENDED)
    client.resume_orchestration(instance_id, reason="go")
    _until(lambda: _status(client, instance_id) == dt_client.OrchestrationStatus.RUNNING)
    client.terminate_orchestration(instance_id, output="bye", recursive=True)
    _until(lambda: _status(client, child) == TERMINATED)
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state is not None and state.runtime_status == TERMINATED


def test_wait_timeout_and_unknown_instance(client: dt_client.TaskHubGrpcClient) -> None:
    instance_id = client.schedule_new_orchestration(waits_forever, instance_id=_id())
    with pytest.raises(TimeoutError):
        client.wait_for_orchestration_completion(instance_id, timeout=1)
    assert client.get_orchestration_state("no-such-" + _id()) is None
    with pytest.raises(grpc.RpcError) as info:
        client.raise_orchestration_event("no-such-" + _id(), "x")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    client.terminate_orchestration(instance_id)


def test_queries_history_and_purge(client: dt_client.TaskHubGrpcClient) -> None:
    ids = [run(client, chain).instance_id for _ in range(3)]
    found = client.get_all_orchestration_states(dt_client.OrchestrationQuery(fetch_inputs_and_outputs=True))
    by_id = {s.instance_id: s for s in found}
    assert set(ids) <= set(by_id)
    assert all(not s.instance_id.startswith("@") for s in found)
    completed = client.get_all_orchestration_states(
        dt_client.OrchestrationQuery(runtime_status=[COMPLETED], max_instance_count=2)
    )
    assert set(ids) <= {s.instance_id for s in completed}
    listed = client.list_instance_ids(runtime_status=[COMPLETED], page_size=1000)
    assert set(ids) <= set(listed.items)
    history = client.get_orchestration_history(ids[0])
    kinds = [type(e).__name__ for e in history]
    assert kinds[0] == "OrchestratorStartedEvent" and "TaskCompletedEvent" in kinds
    result = client.purge_orchestration(ids[0])
    assert result.deleted_instance_count == 1
    assert client.get_orchestration_state(ids[0]) is None
    by_filter = client.purge_orchestrations_by(
        created_time_from=datetime.now(timezone.utc) - timedelta(hours=1), runtime_status=[COMPLETED]
    )
    assert by_filter.deleted_instance_count >= 2
    assert client.get_orchestration_state(ids[1]) is None


def test_large_payloads_go_through_blobs(client: dt_client.TaskHubGrpcClient) -> None:
    state = run(client, large, 200_000)
    assert state.runtime_status == COMPLETED, state.failure_details
    assert json.loads(state.serialized_output) == 200_000 + len("Hello !")


# ---------------------------------------------------------------------------- entities
def test_entities_class_based_failure_rolls_back(client: dt_client.TaskHubGrpcClient) -> None:
    key = uuid.uuid4().hex[:8]
    state = run(client, uses_entities, key)
    assert state.runtime_status == COMPLETED, state.failure_details
    result = json.loads(state.serialized_output)
    assert result["total"] == 15 and result["after"] == 15
    assert "entity says no" in result["failed"]
    metadata = client.get_entity(entities.EntityInstanceId("Counter", key))
    assert metadata is not None and metadata.get_state(int) == 15


def test_entities_function_based_locks_and_signals(client: dt_client.TaskHubGrpcClient) -> None:
    key = uuid.uuid4().hex[:8]
    state = run(client, locks_entities, key)
    assert state.runtime_status == COMPLETED, state.failure_details
    assert json.loads(state.serialized_output) == 15
    target = entities.EntityInstanceId("bank", key + "c")
    client.signal_entity(target, "deposit", input=3)
    client.signal_entity(target, "deposit", input=4, signal_time=datetime.now(timezone.utc) + timedelta(seconds=1))
    _until(lambda: (m := client.get_entity(target)) is not None and m.get_state(int) == 7)
    found = client.get_all_entities(dt_client.EntityQuery(instance_id_starts_with="@bank@" + key, include_state=True))
    assert {str(m.id) for m in found} >= {f"@bank@{key}a", f"@bank@{key}b", f"@bank@{key}c"}
    client.signal_entity(target, "delete")
    _until(lambda: client.get_entity(target) is None)
    cleaned = client.clean_entity_storage()
    assert cleaned.orphaned_locks_released == 0


# ---------------------------------------------------------------------------- helpers
def _status(client: dt_client.TaskHubGrpcClient, instance_id: str) -> Any:
    state = client.get_orchestration_state(instance_id)
    return None if state is None else state.runtime_status


def _until(probe: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f}s")
        time.sleep(0.1)


def test_tags_and_id_reuse_policy(sidecar: SidecarThread, client: dt_client.TaskHubGrpcClient) -> None:
    from durable_azstorage.sidecar._proto import pb, pb_grpc

    state = run(client, chain, tags={"team": "blue"})
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = pb_grpc.TaskHubSidecarServiceStub(channel)
        raw = stub.GetInstance(pb.GetInstanceRequest(instanceId=state.instance_id))
    assert dict(raw.orchestrationState.tags) == {"team": "blue"}
    # A finished id may be reused by default (DTAS); a reuse policy that lists only FAILED refuses it.
    refuse = pb.OrchestrationIdReusePolicy(replaceableStatus=[pb.ORCHESTRATION_STATUS_FAILED])
    with pytest.raises(grpc.RpcError) as info:
        client.schedule_new_orchestration(chain, instance_id=state.instance_id, reuse_id_policy=refuse)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    again = client.schedule_new_orchestration(chain, instance_id=state.instance_id)
    done = client.wait_for_orchestration_completion(again, timeout=60)
    assert done is not None and done.runtime_status == COMPLETED
