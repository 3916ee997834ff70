"""azure-functions-durable 1.x orchestrators through our context JSON and DTFx-style numbering."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import azure.durable_functions as df

from durable_azstorage.model import EventRaisedEvent, OrchestrationStatus
from durable_azstorage.runtimes.actions import ScheduleTask
from durable_azstorage.runtimes.functions import (
    ActivityFunction,
    FunctionsActivityRuntime,
    FunctionsOrchestrationRuntime,
)

from ._runtime_hub import Hub

ATTEMPTS: dict[str, int] = {}


def hello(name: str) -> str:
    return f"Hello {name}!"


def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ValueError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


def boom(_: Any) -> None:
    raise RuntimeError("kaboom")


def chain(ctx: df.DurableOrchestrationContext) -> Any:
    a = yield ctx.call_activity("Hello", ctx.get_input())
    b = yield ctx.call_activity("Hello", a)
    ctx.set_custom_status({"step": 2})
    return [a, b]


def fan(ctx: df.DurableOrchestrationContext) -> Any:
    results = yield ctx.task_all([ctx.call_activity("Hello", str(i)) for i in range(5)])
    return sorted(results)


def retrying(ctx: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=5)
    first = yield ctx.call_activity_with_retry("Flaky", options, ctx.instance_id)
    second = yield ctx.call_activity("Hello", "after")
    return [first, second]


def retry_gives_up(ctx: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    try:
        yield ctx.call_activity_with_retry("Boom", options, None)
    except Exception as exc:
        compensated = yield ctx.call_activity("Hello", "compensation")
        return {"error": "kaboom" in str(exc), "compensated": compensated}
    return "unreachable"


def approval(ctx: df.DurableOrchestrationContext) -> Any:
    deadline = ctx.current_utc_datetime + timedelta(seconds=ctx.get_input())
    timer = ctx.create_timer(deadline)
    event = ctx.wait_for_external_event("Approval")
    winner = yield ctx.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return f"approved: {event.result}"
    return (yield ctx.call_activity("Hello", "escalation"))


def parent(ctx: df.DurableOrchestrationContext) -> Any:
    kids = [ctx.call_sub_orchestrator("Chain", str(i)) for i in range(2)]
    return (yield ctx.task_all(kids))


def eternal(ctx: df.DurableOrchestrationContext) -> Any:
    n = ctx.get_input()
    yield ctx.call_activity("Hello", str(n))
    if n < 3:
        ctx.continue_as_new(n + 1)
        return None
    return n


def failing(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.call_activity("Boom", None)
    return "unreachable"


def _handles(**fns: Any) -> dict[str, Any]:
    return {name: df.Orchestrator.create(fn) for name, fn in fns.items()}


@pytest.fixture()
def hub() -> Hub:
    orchestrators = _handles(
        Chain=chain, Fan=fan, Retrying=retrying, RetryGivesUp=retry_gives_up, Approval=approval,
        Parent=parent, Eternal=eternal, Failing=failing,
    )
    activities = {
        "Hello": ActivityFunction(hello, "name"), "Flaky": ActivityFunction(flaky, "key"),
        "Boom": ActivityFunction(boom, "_"),
    }
    return Hub(FunctionsOrchestrationRuntime(orchestrators), FunctionsActivityRuntime(activities))


async def test_chain_with_custom_status(hub: Hub) -> None:
    inst = hub.start("Chain", json.dumps("Tokyo"))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert json.loads(inst.output or "") == ["Hello Tokyo!", "Hello Hello Tokyo!!"]
    assert json.loads(inst.custom_status or "") == {"step": 2}
    first = inst.outcomes[0].work_item_messages[0].event
    assert first.event_id == 0 and first.input == json.dumps([json.dumps("Tokyo")])  # the extension's form


async def test_fan_out_fan_in(hub: Hub) -> None:
    inst = hub.start("Fan")
    await hub.run()
    assert json.loads(inst.output or "") == sorted(f"Hello {i}!" for i in range(5))
    assert [m.event.event_id for m in inst.outcomes[0].work_item_messages] == [0, 1, 2, 3, 4]


async def test_retry_follows_the_retry_interceptor_ids(hub: Hub) -> None:
    inst = hub.start("Retrying", instance_id="retry-1")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == ["ok after 3", "Hello after!"]
    ids = [(type(e).__name__, e.event_id) for e in inst.history if (e.event_id >= 0 and "Scheduled" in type(e).__name__)
           or "TimerCreated" in type(e).__name__]
    assert ids == [
        ("TaskScheduledEvent", 0), ("TimerCreatedEvent", 1), ("TaskScheduledEvent", 2),
        ("TimerCreatedEvent", 3), ("TaskScheduledEvent", 4), ("TaskScheduledEvent", 5),
    ]


async def test_retry_gives_up_then_compensates(hub: Hub) -> None:
    inst = hub.start("RetryGivesUp")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == {"error": True, "compensated": "Hello compensation!"}


async def test_approval_event_wins(hub: Hub) -> None:
    inst = hub.start("Approval", json.dumps(3600))
    await hub.run(fire_timers=False)
    hub.raise_event("i1", EventRaisedEvent(name="Approval", input=json.dumps("yes")))
    await hub.run(fire_timers=False)
    assert inst.status == OrchestrationStatus.Completed
    assert json.loads(inst.output or "") == "approved: yes"


async def test_approval_times_out_and_escalates(hub: Hub) -> None:
    inst = hub.start("Approval", json.dumps(5))
    await hub.run()
    assert json.loads(inst.output or "") == "Hello escalation!"


async def test_sub_orchestrations(hub: Hub) -> None:
    inst = hub.start("Parent")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert json.loads(inst.output or "") == [["Hello 0!", "Hello Hello 0!!"], ["Hello 1!", "Hello Hello 1!!"]]


async def test_continue_as_new(hub: Hub) -> None:
    inst = hub.start("Eternal", "0")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert json.loads(inst.output or "") == 3


async def test_activity_failure_fails_the_orchestration_with_the_functions_message(hub: Hub) -> None:
    inst = hub.start("Failing")
    await hub.run()
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None and "Orchestrator function 'Failing' failed" in inst.failure.error_message
    assert "kaboom" in inst.failure.error_message


async def test_changed_code_fails_with_a_clear_message(hub: Hub) -> None:
    inst = hub.start("Chain", json.dumps("x"))
    await hub.episode("i1")
    hub.orch = FunctionsOrchestrationRuntime(_handles(Chain=failing))  # "deploy" different code
    await hub.run_activities()
    await hub.run()
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None and "Non-deterministic" in inst.failure.error_message


async def test_unknown_orchestrator_and_activity(hub: Hub) -> None:
    inst = hub.start("Nope")
    await hub.run()
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None and "'Nope' doesn't exist" in inst.failure.error_message
    result = await FunctionsActivityRuntime({}).run_activity("Missing", None, instance_id="i", task_id=0)
    assert result.failure_details is not None and "'Missing' doesn't exist" in result.failure_details.error_message


def test_new_actions_are_schedule_tasks() -> None:
    assert ScheduleTask(id=0, name="x").id == 0
