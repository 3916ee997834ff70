"""azure-functions-durable 1.x orchestrators continued between episodes give what a full replay gives.

Every episode runs twice — through a runtime that keeps the SDK's executor between episodes and
through one that replays the whole history (``session_capacity=0``, the behaviour before) — and
the two responses must be equal: actions with their ids and payloads, completion, output, custom
status, failure text. The counters show the kept executor was really used.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from datetime import timedelta
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import azure.durable_functions as df

from durable_azstorage.codec import entity_codec
from durable_azstorage.errors import ConfigurationError
from durable_azstorage.model import (
    EventRaisedEvent,
    ExecutionResumedEvent,
    ExecutionSuspendedEvent,
    OrchestrationStatus,
)
from durable_azstorage.model.entities import ResponseMessage
from durable_azstorage.runtimes.base import EpisodeRequest, EpisodeResult
from durable_azstorage.runtimes.functions import (
    ActivityFunction,
    FunctionsActivityRuntime,
    FunctionsOrchestrationRuntime,
)
from durable_azstorage.runtimes.functions_replay import SessionCache, supported
from durable_azstorage.runtimes.state import EpisodeOutcome
from durable_azstorage.settings import WorkerSettings

from ._runtime_hub import Hub

ATTEMPTS: dict[str, int] = {}


# ------------------------------------------------------------------------------ activities
def hello(name: str) -> str:
    return f"Hello {name}!"


def square(x: int) -> int:
    return x * x


def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ValueError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


def boom(_: Any) -> None:
    raise RuntimeError("kaboom")


# --------------------------------------------------------------------------- orchestrators
def chain(ctx: df.DurableOrchestrationContext) -> Any:
    out = []
    for i in range(ctx.get_input()):
        out.append((yield ctx.call_activity("Hello", f"{i}")))
        ctx.set_custom_status({"step": i, "at": ctx.current_utc_datetime.isoformat(), "guid": str(ctx.new_guid())})
    return out


def fan(ctx: df.DurableOrchestrationContext) -> Any:
    first = yield ctx.task_all([ctx.call_activity("Square", i) for i in range(6)])
    second = yield ctx.task_all([ctx.call_activity("Square", x) for x in first[:3]])
    fastest = yield ctx.task_any([ctx.call_activity("Square", 7), ctx.call_activity("Hello", "race")])
    return [sum(first), second, fastest.result]


def approval(ctx: df.DurableOrchestrationContext) -> Any:
    deadline = ctx.current_utc_datetime + timedelta(seconds=ctx.get_input())
    timer = ctx.create_timer(deadline)
    event = ctx.wait_for_external_event("Approval")
    winner = yield ctx.task_any([event, timer])
    if winner == event:
        timer.cancel()
        after = yield ctx.call_activity("Hello", "approved")
        return f"{event.result} / {after}"
    return (yield ctx.call_activity("Hello", "escalation"))


def events(ctx: df.DurableOrchestrationContext) -> Any:
    got = []
    for _ in range(3):
        got.append((yield ctx.wait_for_external_event("Item")))
        ctx.set_custom_status(len(got))
    both = yield ctx.task_all([ctx.wait_for_external_event("A"), ctx.wait_for_external_event("B")])
    return [got, both]


def sleeper(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=30))
    yield ctx.call_activity("Hello", "between")
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=10))  # long: chained 3-day hops
    return ctx.current_utc_datetime.isoformat()


def child(ctx: df.DurableOrchestrationContext) -> Any:
    x = ctx.get_input()
    if x < 0:
        raise ValueError(f"negative {x}")
    return (yield ctx.call_activity("Square", x))


def parent(ctx: df.DurableOrchestrationContext) -> Any:
    kids = yield ctx.task_all([ctx.call_sub_orchestrator("Child", i) for i in range(3)])
    try:
        yield ctx.call_sub_orchestrator("Child", -1)
    except Exception as exc:
        return [kids, "negative" in str(exc)]
    return [kids, None]


def retrying(ctx: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=5)
    first = yield ctx.call_activity_with_retry("Flaky", options, ctx.instance_id)
    both = yield ctx.task_all([
        ctx.call_activity_with_retry("Flaky", options, ctx.instance_id + "-a"),
        ctx.call_activity_with_retry("Flaky", options, ctx.instance_id + "-b"),
    ])
    sub = yield ctx.call_sub_orchestrator_with_retry("Child", options, 4)
    try:
        yield ctx.call_activity_with_retry("Boom", df.RetryOptions(1000, 2), None)
    except Exception as exc:
        return [first, both, sub, "kaboom" in str(exc)]
    return "unreachable"


def entities(ctx: df.DurableOrchestrationContext) -> Any:
    counter = df.EntityId("Counter", "k1")
    ctx.signal_entity(counter, "add", 5)
    value = yield ctx.call_entity(counter, "add", 2)
    ctx.signal_entity(df.EntityId("Counter", "k2"), "add", 1)
    got = yield ctx.call_entity(counter, "get")
    try:
        yield ctx.call_entity(counter, "fail")
    except Exception as exc:
        return [value, got, str(exc)]
    return "unreachable"


def eternal(ctx: df.DurableOrchestrationContext) -> Any:
    n = ctx.get_input()
    yield ctx.call_activity("Hello", str(n))
    if n < 3:
        ctx.continue_as_new(n + 1)
        return None
    return n


def failing(ctx: df.DurableOrchestrationContext) -> Any:
    a = yield ctx.call_activity("Hello", "first")
    if a:
        raise KeyError("orchestrator raised after an activity")
    return a


def failing_activity(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.call_activity("Hello", "first")
    yield ctx.call_activity("Boom", None)
    return "unreachable"


ORCHESTRATORS = {
    "Chain": chain, "Fan": fan, "Approval": approval, "Events": events, "Sleeper": sleeper, "Child": child,
    "Parent": parent, "Retrying": retrying, "Entities": entities, "Eternal": eternal, "Failing": failing,
    "FailingActivity": failing_activity,
}


# ------------------------------------------------------------------------------ the hub
class _Comparing:
    """Runs each episode continued (kept executor) and as a full replay; both answers must be equal."""

    def __init__(self, capacity: int = 1000) -> None:
        handles = {name: df.Orchestrator.create(fn) for name, fn in ORCHESTRATORS.items()}
        self.incremental = FunctionsOrchestrationRuntime(handles, session_capacity=capacity)
        self.full = FunctionsOrchestrationRuntime(handles, session_capacity=0)
        self.compared = 0

    @property
    def sessions(self) -> SessionCache:
        return self.incremental.sessions

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        result = self.incremental.run_episode_sync(request)
        expected = self.full.run_episode_sync(request)
        assert result == expected, (request.instance_id, len(request.past_events), result, expected)
        self.compared += 1
        return result


class _EntityHub(Hub):
    """The test hub plus a counter entity that answers calls the way the worker does (EventRaised)."""

    def __init__(self, orch: _Comparing) -> None:
        activities = {
            "Hello": ActivityFunction(hello, "name"), "Square": ActivityFunction(square, "x"),
            "Flaky": ActivityFunction(flaky, "key"), "Boom": ActivityFunction(boom, "_"),
        }
        super().__init__(orch, FunctionsActivityRuntime(activities))
        self.counters: dict[str, int] = {}

    def _route(self, iid: str, out: EpisodeOutcome) -> None:
        entity_messages = [m for m in out.orchestrator_messages if m.orchestration_instance.instance_id.startswith("@")]
        rest = [m for m in out.orchestrator_messages if m not in entity_messages]
        super()._route(iid, dataclasses.replace(out, orchestrator_messages=rest))
        for message in entity_messages:
            self._operate(message.orchestration_instance.instance_id, message.event)

    def _operate(self, entity: str, event: Any) -> None:
        request = entity_codec.decode_request(event.input or "")
        value = self.counters.get(entity, 0)
        response = ResponseMessage(result=json.dumps(value))
        if request.operation == "add":
            value = self.counters[entity] = value + int(json.loads(request.input or "0"))
            response = ResponseMessage(result=json.dumps(value))
        elif request.operation == "fail":
            response = ResponseMessage(result=json.dumps("the entity refused"), error_message="ValueError")
        if not request.is_signal and request.parent_instance_id:
            answer = EventRaisedEvent(name=request.id, input=entity_codec.encode_response(response), timestamp=self.now)
            self.raise_event(request.parent_instance_id, answer)


@pytest.fixture()
def orch() -> _Comparing:
    return _Comparing()


@pytest.fixture()
def hub(orch: _Comparing) -> _EntityHub:
    ATTEMPTS.clear()
    return _EntityHub(orch)


def _output(inst: Any) -> Any:
    return json.loads(inst.output or "null")


# ------------------------------------------------------------------------------ the tests
def test_the_installed_sdk_has_what_a_kept_executor_needs() -> None:
    # If an SDK release renames these internals, every episode silently becomes a full replay;
    # this test is what says so.
    assert supported()
    assert SessionCache(10).capacity == 10


def test_the_cache_size_is_a_worker_setting_and_host_json_can_turn_it_off() -> None:
    assert WorkerSettings().orchestrator_cache_size == 1000
    off = {"extensions": {"durableTask": {"extendedSessionsEnabled": False}}}
    assert WorkerSettings.from_host_json(off).orchestrator_cache_size == 0
    assert WorkerSettings.from_host_json({}, orchestrator_cache_size=5).orchestrator_cache_size == 5
    with pytest.raises(ConfigurationError, match="orchestrator_cache_size"):
        WorkerSettings(orchestrator_cache_size=-1)


async def test_chain_custom_status_clock_and_guids(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Chain", json.dumps(25))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert _output(inst) == [f"Hello {i}!" for i in range(25)]
    assert json.loads(inst.custom_status or "")["step"] == 24
    # 26 episodes: the first one builds the executor, each later one continues it; done, it is dropped.
    assert (orch.sessions.misses, orch.sessions.hits, len(orch.sessions)) == (1, 25, 0)


async def test_fan_out_fan_in_and_task_any(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Fan")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert _output(inst) == [55, [0, 1, 16], 49]
    assert orch.sessions.hits >= 3 and orch.sessions.misses == 1


async def test_event_wins_over_the_timer(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Approval", json.dumps(3600))
    await hub.run(fire_timers=False)
    hub.raise_event("i1", EventRaisedEvent(name="Approval", input=json.dumps("yes")))
    await hub.run(fire_timers=False)
    assert _output(inst) == "yes / Hello approved!"
    assert orch.sessions.hits == 2


async def test_timer_wins_over_the_event(hub: _EntityHub) -> None:
    inst = hub.start("Approval", json.dumps(5))
    await hub.run()
    assert _output(inst) == "Hello escalation!"


async def test_external_events_one_by_one_early_and_together(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Events")
    hub.raise_event("i1", EventRaisedEvent(name="B", input=json.dumps("b-early")))  # buffered until waited for
    await hub.run()
    for i in range(3):
        hub.raise_event("i1", EventRaisedEvent(name="Item", input=json.dumps(i)))
        await hub.run()
    hub.raise_event("i1", EventRaisedEvent(name="A", input=json.dumps("a")))
    await hub.run()
    assert _output(inst) == [[0, 1, 2], ["a", "b-early"]]
    assert orch.sessions.hits == 4


async def test_events_held_while_suspended_are_fed_on_resume(hub: _EntityHub, orch: _Comparing) -> None:
    # Held events are written to history without running the orchestrator: the kept executor
    # meets them as already-played past events on resume, as a full replay does.
    inst = hub.start("Events")
    await hub.run()
    hub.raise_event("i1", EventRaisedEvent(name="Item", input="1"))
    await hub.run()
    hub.raise_event("i1", ExecutionSuspendedEvent(reason="maintenance"))
    await hub.run()
    for name, value in (("Item", "2"), ("Item", "3"), ("A", '"a"')):
        hub.raise_event("i1", EventRaisedEvent(name=name, input=value))
    await hub.run()
    assert inst.status == OrchestrationStatus.Suspended
    hub.raise_event("i1", ExecutionResumedEvent(reason="done"))
    hub.raise_event("i1", EventRaisedEvent(name="B", input='"b"'))
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert _output(inst) == [[1, 2, 3], ["a", "b"]]
    assert [o.ran_runtime for o in inst.outcomes] == [True, True, False, False, True]
    assert (orch.sessions.misses, orch.sessions.hits) == (1, 2)  # the resume continued the kept executor


async def test_short_and_long_timers(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Sleeper")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    fired = [e for e in inst.history if type(e).__name__ == "TimerFiredEvent"]
    assert len(fired) == 4  # 30 s, then 10 days as 3 + 3 + 4 (hops of 3 while more than 6 remain)
    assert orch.sessions.hits == len(inst.outcomes) - 1


async def test_sub_orchestrations_and_a_failing_child(hub: _EntityHub) -> None:
    inst = hub.start("Parent")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert _output(inst) == [[0, 1, 4], True]


async def test_retries_of_activities_and_sub_orchestrations(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Retrying", instance_id="r1")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    assert _output(inst) == ["ok after 3", ["ok after 3", "ok after 3"], 16, True]
    assert orch.sessions.hits > 10


async def test_an_episode_with_nothing_for_a_pending_retry_keeps_it_open(hub: _EntityHub, orch: _Comparing) -> None:
    # An event nobody waits for wakes the orchestrator while the first attempt is out: that
    # episode schedules nothing, yet the retry must still take its timer and next attempt later.
    inst = hub.start("Retrying", instance_id="r2")
    await hub.episode("r2")
    hub.raise_event("r2", EventRaisedEvent(name="Noise", input="1"))
    await hub.episode("r2")
    assert not inst.outcomes[-1].work_item_messages
    await hub.run()
    assert _output(inst) == ["ok after 3", ["ok after 3", "ok after 3"], 16, True]
    assert orch.sessions.misses == 2  # r2 and its sub-orchestration


async def test_entity_calls_signals_and_an_entity_error(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Entities")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed, inst.failure
    value, got, error = _output(inst)
    assert (value, got) == (7, 7) and "refused" in error
    assert hub.counters == {"@counter@k1": 7, "@counter@k2": 1}
    assert orch.sessions.hits == 3


async def test_continue_as_new_starts_a_new_session_per_execution(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Eternal", "0")
    await hub.run()
    assert inst.status == OrchestrationStatus.Completed
    assert _output(inst) == 3
    assert (orch.sessions.misses, orch.sessions.hits, len(orch.sessions)) == (4, 4, 0)


async def test_orchestrator_exception_and_activity_failure(hub: _EntityHub, orch: _Comparing) -> None:
    raised = hub.start("Failing", instance_id="f1")
    failed = hub.start("FailingActivity", instance_id="f2")
    await hub.run()
    assert raised.status == failed.status == OrchestrationStatus.Failed
    assert raised.failure is not None and "orchestrator raised after an activity" in raised.failure.error_message
    assert failed.failure is not None and "kaboom" in failed.failure.error_message
    assert orch.sessions.hits == 3 and len(orch.sessions) == 0


async def test_a_reloaded_history_is_replayed_in_full_then_continued(hub: _EntityHub, orch: _Comparing) -> None:
    inst = hub.start("Chain", json.dumps(4))
    await hub.episode("i1")
    await hub.run_activities()
    await hub.episode("i1")
    inst.history = [dataclasses.replace(e) for e in inst.history]  # as if read again from storage
    await hub.run()
    assert _output(inst) == [f"Hello {i}!" for i in range(4)]
    assert (orch.sessions.misses, orch.sessions.hits) == (2, 3)


async def test_eviction_falls_back_to_full_replays() -> None:
    orch = _Comparing(capacity=1)
    hub = _EntityHub(orch)
    first, second = hub.start("Chain", json.dumps(5), instance_id="a"), hub.start("Fan", instance_id="b")
    await hub.run()
    assert _output(first) == [f"Hello {i}!" for i in range(5)] and _output(second) == [55, [0, 1, 16], 49]
    assert orch.sessions.misses > 2 and len(orch.sessions) == 0  # both ran interleaved with one slot


async def test_a_handle_that_is_not_the_sdks_is_always_replayed_in_full() -> None:
    sdk_handle = df.Orchestrator.create(chain)

    def wrapped(context: str) -> str:  # e.g. an app's own decorator around the handle
        return sdk_handle(context)

    runtime = FunctionsOrchestrationRuntime({"Chain": wrapped})
    hub = Hub(runtime, FunctionsActivityRuntime({"Hello": ActivityFunction(hello, "name")}))
    inst = hub.start("Chain", json.dumps(3))
    await hub.run()
    assert _output(inst) == [f"Hello {i}!" for i in range(3)]
    assert (runtime.sessions.hits, runtime.sessions.misses) == (0, 0)


async def test_changed_code_between_episodes_fails_the_same_way(hub: _EntityHub) -> None:
    inst = hub.start("Chain", json.dumps(3))
    await hub.episode("i1")
    hub.orch = FunctionsOrchestrationRuntime({"Chain": df.Orchestrator.create(fan)})  # a new deployment
    await hub.run()
    assert inst.status == OrchestrationStatus.Failed
    assert inst.failure is not None and "Non-deterministic" in inst.failure.error_message


def test_the_runtime_benchmark_sees_flat_equal_episodes() -> None:
    # ``python -m benchmarks.functions_replay`` drives the pure replay state; keep it honest here.
    from benchmarks import functions_replay

    kept = FunctionsOrchestrationRuntime(functions_replay._handles())
    full = FunctionsOrchestrationRuntime(functions_replay._handles(), session_capacity=0)
    kept_samples, kept_results = functions_replay.drive(kept, 12)
    _, full_results = functions_replay.drive(full, 12)
    assert kept_results == full_results and len(kept_results) == 13
    assert (kept.sessions.hits, kept.sessions.misses) == (12, 1)
    assert [n for n, _ in kept_samples][-1] > 40  # the history grew while the episodes were timed
