"""Real durabletask orchestrators driven through several episodes by the pure state (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from durabletask import task

from durable_azstorage.errors import FunctionAlreadyRegisteredError, FunctionNotRegisteredError
from durable_azstorage.model import (
    EventRaisedEvent,
    EventType,
    ExecutionResumedEvent,
    ExecutionSuspendedEvent,
    ExecutionTerminatedEvent,
    OrchestrationStatus,
)
from durable_azstorage.runtimes.actions import CompleteOrchestration, CreateTimer, ScheduleTask
from durable_azstorage.runtimes.base import (
    ActivityRuntime,
    EpisodeRequest,
    EpisodeResult,
    OrchestrationRuntime,
    Registry,
)
from durable_azstorage.runtimes.durabletask import DurableTaskActivityRuntime, DurableTaskOrchestrationRuntime

from ._runtime_hub import T0, Hub


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def double(ctx: task.ActivityContext, x: int) -> int:
    return x * 2


async def slow_upper(ctx: task.ActivityContext, s: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"s": s.upper(), "task": ctx.task_id, "orch": ctx.orchestration_id}


def boom(ctx: task.ActivityContext, _: Any) -> None:
    raise ValueError("kaboom")


ATTEMPTS: dict[str, int] = {}


def flaky(ctx: task.ActivityContext, key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise RuntimeError(f"attempt {ATTEMPTS[key]}")
    return f"ok after {ATTEMPTS[key]}"


def chain(ctx: task.OrchestrationContext, name: str) -> Any:
    a = yield ctx.call_activity(hello, input=name)
    b = yield ctx.call_activity(hello, input=a)
    c = yield ctx.call_activity("slow_upper", input=b)
    ctx.set_custom_status({"done": 3})
    return [a, b, c]


def fan(ctx: task.OrchestrationContext, n: int) -> Any:
    results = yield task.when_all([ctx.call_activity(double, input=i) for i in range(n)])
    return sum(results)


def child(ctx: task.OrchestrationContext, x: int) -> Any:
    y = yield ctx.call_activity(double, input=x)
    if y > 100:
        raise ValueError("too big")
    return y + 1


def parent(ctx: task.OrchestrationContext, x: int) -> Any:
    r = yield ctx.call_sub_orchestrator(child, input=x, instance_id=f"child-{x}")
    try:
        yield ctx.call_sub_orchestrator(child, input=1000)
    except task.TaskFailedError as e:
        return [r, e.details.message]
    return [r, None]


def sleeper(ctx: task.OrchestrationContext, days: float) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(days=days))
    return (ctx.current_utc_datetime - start).total_seconds() / 86400


def approver(ctx: task.OrchestrationContext, _: Any) -> Any:
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(hours=1))
    winner = yield task.when_any([approval, timeout])
    return approval.get_result() if winner == approval else "timeout"


def counter(ctx: task.OrchestrationContext, n: int) -> Any:
    if n < 3:
        yield ctx.create_timer(timedelta(seconds=5))
        ctx.continue_as_new(n + 1, save_events=True)
        return None
    extra = yield ctx.wait_for_external_event("late")
    return [n, extra, ctx.new_uuid() != ""]


def retrier(ctx: task.OrchestrationContext, key: str) -> Any:
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=5)
    return (yield ctx.call_activity(flaky, input=key, retry_policy=policy))


def failing(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(boom)
    return "unreachable"


def waiter(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.wait_for_external_event("go"))


def sender(ctx: task.OrchestrationContext, target: str) -> Any:
    ctx.send_event(target, "go", data={"from": ctx.instance_id})
    return "sent"


@pytest.fixture()
def hub() -> Hub:
    reg = Registry()
    for fn in (chain, fan, child, parent, sleeper, approver, counter, retrier, failing, waiter, sender):
        reg.add_orchestrator(fn)
    for fn in (hello, double, slow_upper, boom, flaky):
        reg.add_activity(fn)
    return Hub(_Comparing(reg), DurableTaskActivityRuntime(reg))


class _Comparing:
    """Every episode runs twice: incrementally (the cached orchestrator) and as a full replay.

    Both must return the same actions and custom status; ``hits`` shows the cache was used.
    """

    def __init__(self, reg: Registry) -> None:
        self.incremental = DurableTaskOrchestrationRuntime(reg)
        self.full = DurableTaskOrchestrationRuntime(reg, sticky_capacity=0)

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        result = await self.incremental.run_episode(request)
        expected = await self.full.run_episode(request)
        assert _comparable(result) == _comparable(expected), (request.instance_id, result, expected)
        return result


def _comparable(result: EpisodeResult) -> EpisodeResult:
    """Stack traces (caller frames) and carried-over events' wall-clock stamps legitimately differ."""
    actions = []
    for action in result.actions:
        if isinstance(action, CompleteOrchestration):
            fd = action.failure_details
            carry = tuple(dataclasses.replace(e, timestamp=T0) for e in action.carryover_events)
            action = dataclasses.replace(
                action,
                failure_details=dataclasses.replace(fd, stack_trace=None) if fd is not None else None,
                carryover_events=carry,
            )
        actions.append(action)
    return dataclasses.replace(result, actions=tuple(actions))


def test_runtimes_satisfy_protocols() -> None:
    reg = Registry()
    assert isinstance(DurableTaskOrchestrationRuntime(reg), OrchestrationRuntime)
    assert isinstance(DurableTaskActivityRuntime(reg), ActivityRuntime)


def test_registry_errors() -> None:
    reg = Registry()
    assert reg.add_activity(hello) == "hello"
    assert reg.add_activity(hello, name="hello2") == "hello2"
    with pytest.raises(FunctionAlreadyRegisteredError):
        reg.add_activity(hello)
    with pytest.raises(FunctionNotRegisteredError, match="hello, hello2"):
        reg.get_activity("nope")
    with pytest.raises(FunctionNotRegisteredError):
        reg.get_orchestrator("chain")


async def test_chain_of_three_activities(hub: Hub) -> None:
    inst = hub.start("chain", json.dumps("Tokyo"))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert json.loads(inst.output or "") == [
        "Hello Tokyo!", "Hello Hello Tokyo!!", {"s": "HELLO HELLO TOKYO!!", "task": 3, "orch": "i1"},
    ]
    assert isinstance(hub.orch, _Comparing)
    replayer = hub.orch.incremental.replayer
    # Episodes 2-4 continue the orchestrator kept from the episode before; the finished one is dropped.
    assert (replayer.misses, replayer.hits, len(replayer)) == (1, 3, 0)


async def test_a_history_that_is_not_the_one_fed_is_replayed_in_full(hub: Hub) -> None:
    hub.start("chain", json.dumps("Tokyo"))
    await hub.episode("i1")
    await hub.run_activities()
    inst = hub.instances["i1"]
    inst.history = [dataclasses.replace(e) for e in inst.history]  # as if reloaded from storage
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert isinstance(hub.orch, _Comparing)
    assert (hub.orch.incremental.replayer.misses, hub.orch.incremental.replayer.hits) == (2, 2)
    assert inst.custom_status == '{"done": 3}'
    kinds = [e.event_type for e in inst.history]
    assert kinds[:4] == [EventType.OrchestratorStarted, EventType.ExecutionStarted,
                         EventType.TaskScheduled, EventType.OrchestratorCompleted]
    assert kinds.count(EventType.TaskScheduled) == 3 and kinds[-2:] == [
        EventType.ExecutionCompleted, EventType.OrchestratorCompleted]
    assert [o.episode for o in inst.outcomes] == [1, 2, 3, 4]


async def test_fan_out_fan_in_50(hub: Hub) -> None:
    inst = hub.start("fan", "50")
    first = await hub.episode("i1")
    assert len(first.work_item_messages) == 50
    assert sorted(m.event.event_id for m in first.work_item_messages) == list(range(1, 51))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert inst.output == str(sum(2 * i for i in range(50)))


async def test_sub_orchestrations_complete_and_fail(hub: Hub) -> None:
    inst = hub.start("parent", "5")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    r, message = json.loads(inst.output or "")
    assert r == 11 and message == "too big"
    assert hub.instances["child-5"].status == OrchestrationStatus.Completed
    failed_child = next(k for k in hub.instances if k.startswith("i1:"))
    assert hub.instances[failed_child].status == OrchestrationStatus.Failed


async def test_short_timer(hub: Hub) -> None:
    inst = hub.start("sleeper", "0.5")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert float(inst.output or "0") == pytest.approx(0.5, abs=0.01)


async def test_long_timer_is_chained_and_completes_once(hub: Hub) -> None:
    inst = hub.start("sleeper", "10")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert float(inst.output or "0") == pytest.approx(10, abs=0.01)
    kinds = [e.event_type for e in inst.history]
    assert kinds.count(EventType.TimerCreated) == 1 and kinds.count(EventType.TimerFired) == 1
    hop_only = [o for o in inst.outcomes if not o.history and o.timer_messages]
    assert len(hop_only) == 2  # 10 d: hop at +3 d (10 > 6), hop at +6 d (7 > 6), final at +10 d


async def test_external_event_wins_when_any(hub: Hub) -> None:
    inst = hub.start("approver")
    await hub.episode("i1")
    hub.raise_event("i1", EventRaisedEvent(name="approval", input='"yes"', timestamp=hub.now))
    await hub.run(fire_timers=False)
    assert inst.status == OrchestrationStatus.Completed and inst.output == '"yes"'


async def test_timer_wins_when_any(hub: Hub) -> None:
    inst = hub.start("approver")
    await hub.run()
    assert inst.output == '"timeout"'


async def test_continue_as_new_carries_events_and_restarts_history(hub: Hub) -> None:
    inst = hub.start("counter", "0")
    await hub.episode("i1")
    hub.raise_event("i1", EventRaisedEvent(name="late", input='"e"', timestamp=hub.now))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert json.loads(inst.output or "") == [3, "e", True]
    cans = [o.continued_as_new for o in inst.outcomes if o.continued_as_new]
    assert len(cans) == 3
    assert len({c.execution_id for c in cans}) == 3 and all(len(c.execution_id) == 32 for c in cans)
    assert inst.history[0].event_type == EventType.OrchestratorStarted
    assert inst.history[1].event_type == EventType.ExecutionStarted


async def test_retry_policy_retries_with_sdk_timers(hub: Hub) -> None:
    inst = hub.start("retrier", '"k1"')
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed and inst.output == '"ok after 3"'
    scheduled = [e.event_id for e in inst.history if e.event_type == EventType.TaskScheduled]
    assert scheduled == [1, 1, 1]  # durabletask reuses the action id for a retry
    assert sum(e.event_type == EventType.TimerCreated for e in inst.history) == 2


async def test_activity_failure_fails_orchestration(hub: Hub) -> None:
    inst = hub.start("failing")
    await hub.run()
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None
    assert inst.failure.error_type == "durabletask.task.TaskFailedError"
    assert "kaboom" in inst.failure.error_message


async def test_unknown_activity_is_a_task_failure(hub: Hub) -> None:
    res = await hub.acts.run_activity("nope", None, instance_id="i1", task_id=1)
    assert res.failure_details is not None and "nope" in res.failure_details.error_message


async def test_send_event_reaches_other_instance(hub: Hub) -> None:
    target = hub.start("waiter", instance_id="w")
    source = hub.start("sender", json.dumps("w"), instance_id="s")
    await hub.run()
    assert source.output == '"sent"'
    assert target.status == OrchestrationStatus.Completed and json.loads(target.output or "") == {"from": "s"}


async def test_suspend_holds_events_until_resume(hub: Hub) -> None:
    inst = hub.start("waiter")
    await hub.episode("i1")
    hub.raise_event("i1", ExecutionSuspendedEvent(reason="pause", timestamp=hub.now))
    hub.raise_event("i1", EventRaisedEvent(name="go", input="1", timestamp=hub.now))
    out = await hub.episode("i1")
    assert not out.ran_runtime and inst.status == OrchestrationStatus.Suspended
    assert [e.event_type for e in out.history] == [
        EventType.OrchestratorStarted, EventType.ExecutionSuspended, EventType.EventRaised,
        EventType.OrchestratorCompleted]
    hub.raise_event("i1", ExecutionResumedEvent(timestamp=hub.now))
    out = await hub.episode("i1")
    assert out.ran_runtime and inst.status == OrchestrationStatus.Completed and inst.output == "1"


async def test_terminate_does_not_run_code(hub: Hub) -> None:
    inst = hub.start("waiter")
    await hub.episode("i1")
    hub.raise_event("i1", ExecutionTerminatedEvent(input='"stop"', timestamp=hub.now))
    out = await hub.episode("i1")
    assert not out.ran_runtime
    assert inst.status == OrchestrationStatus.Terminated and inst.output == '"stop"'


async def test_non_determinism_fails_the_orchestration(hub: Hub) -> None:
    hub.start("chain", '"x"')
    await hub.episode("i1")
    inst = hub.instances["i1"]
    sched = next(e for e in inst.history if e.event_type == EventType.TaskScheduled)
    sched.name = "something_else"  # type: ignore[attr-defined]
    hub.activity_queue.clear()
    from durable_azstorage.model import TaskCompletedEvent

    hub.raise_event("i1", TaskCompletedEvent(task_scheduled_id=1, result='"r"', timestamp=hub.now))
    await hub.episode("i1")
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None and "NonDeterminism" in inst.failure.error_type


async def test_first_episode_actions_are_canonical(hub: Hub) -> None:
    hub.start("chain", '"x"')
    state_out = await hub.episode("i1")
    assert len(state_out.work_item_messages) == 1
    runtime = hub.orch.incremental if isinstance(hub.orch, _Comparing) else hub.orch
    assert isinstance(runtime, DurableTaskOrchestrationRuntime)
    from durable_azstorage.runtimes.state import ReplayState

    st = ReplayState("i1", [])
    hub.start("sleeper", "1", instance_id="i2")
    plan = st.prepare(hub.instances["i2"].inbox, now=T0)
    result = await runtime.run_episode(plan.request)  # type: ignore[arg-type]
    assert result.actions == (CreateTimer(id=1, fire_at=T0 + timedelta(days=1)),)
    assert not isinstance(result.actions[0], (ScheduleTask, CompleteOrchestration))


async def test_event_held_and_resume_in_one_batch_is_delivered(hub: Hub) -> None:
    inst = hub.start("waiter")
    await hub.episode("i1")
    hub.raise_event("i1", ExecutionSuspendedEvent(reason="pause", timestamp=hub.now))
    await hub.episode("i1")
    hub.raise_event("i1", EventRaisedEvent(name="go", input="1", timestamp=hub.now))
    hub.raise_event("i1", ExecutionResumedEvent(timestamp=hub.now))
    out = await hub.episode("i1")
    assert out.ran_runtime and inst.status == OrchestrationStatus.Completed and inst.output == "1"
