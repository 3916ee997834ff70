"""Pure replay state: actions -> history events and messages, and the inbound filters."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from durable_azstorage.model import (
    EventRaisedEvent,
    EventSentEvent,
    EventType,
    ExecutionCompletedEvent,
    ExecutionResumedEvent,
    ExecutionStartedEvent,
    ExecutionSuspendedEvent,
    ExecutionTerminatedEvent,
    FailureDetails,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    ParentInstance,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)
from durable_azstorage.runtimes.actions import (
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durable_azstorage.runtimes.base import EpisodeResult
from durable_azstorage.runtimes.state import (
    ReplayState,
    is_duplicate,
    is_out_of_order,
    next_timer_hop,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
EXEC = "e" * 32


def ids() -> itertools.count[int]:
    return itertools.count(1)


def factory() -> object:
    counter = ids()
    return lambda: f"{next(counter):032x}"


def started(parent: ParentInstance | None = None, tags: dict[str, str] | None = None) -> ExecutionStartedEvent:
    return ExecutionStartedEvent(
        orchestration_instance=OrchestrationInstance(instance_id="i", execution_id=EXEC),
        name="orch", version="1", input='"in"', parent_instance=parent, tags=tags, timestamp=T0,
    )


def past(*events: object) -> list[object]:
    return [OrchestratorStartedEvent(timestamp=T0), started(), *events, OrchestratorCompletedEvent(timestamp=T0)]


def run(state: ReplayState, new: list[object], actions: list[object], custom: str | None = None):  # type: ignore[no-untyped-def]
    plan = state.prepare(new, now=T0 + timedelta(minutes=1))  # type: ignore[arg-type]
    assert plan.request is not None
    return state.apply(plan, EpisodeResult(actions=actions, custom_status=custom))  # type: ignore[arg-type]


def test_first_episode_schedule_task_event_and_work_item() -> None:
    state = ReplayState("i", [], id_factory=factory())  # type: ignore[arg-type]
    out = run(state, [started()], [ScheduleTask(id=1, name="act", input='"x"', tags={"t": "1"})], custom='"c"')
    assert [e.event_type for e in out.history] == [
        EventType.OrchestratorStarted, EventType.ExecutionStarted, EventType.TaskScheduled,
        EventType.OrchestratorCompleted]
    ts = out.history[2]
    assert isinstance(ts, TaskScheduledEvent) and ts.event_id == 1 and ts.name == "act" and ts.input == '"x"'
    (msg,) = out.work_item_messages
    assert msg.event.event_id == 1 and msg.event is not ts
    assert msg.orchestration_instance == OrchestrationInstance(instance_id="i", execution_id=EXEC)
    assert msg.orchestration_execution_context is not None
    assert out.status == OrchestrationStatus.Running and out.custom_status == '"c"' and out.episode == 1


def test_request_shape_past_and_new() -> None:
    state = ReplayState("i", past(TaskScheduledEvent(event_id=1, name="a")))  # type: ignore[arg-type]
    done = TaskCompletedEvent(task_scheduled_id=1, result="1")
    plan = state.prepare([done], now=T0)
    assert plan.request is not None
    assert plan.request.execution_id == EXEC and len(plan.request.past_events) == 4
    assert plan.request.new_events[0].event_type == EventType.OrchestratorStarted
    assert plan.request.new_events[1] is done


def test_timer_sub_orchestration_and_send_event() -> None:
    state = ReplayState("i", past(), id_factory=factory())  # type: ignore[arg-type]
    fire = T0 + timedelta(hours=1)
    out = run(state, [EventRaisedEvent(name="x")], [
        CreateTimer(id=1, fire_at=fire),
        CreateSubOrchestration(id=2, name="child", instance_id="c1", input="5", tags={"a": "b"}),
        SendEvent(id=3, instance_id="other", name="ping", data='{"k":1}'),
    ])
    kinds = [e.event_type for e in out.history]
    assert kinds == [EventType.OrchestratorStarted, EventType.EventRaised, EventType.TimerCreated,
                     EventType.SubOrchestrationInstanceCreated, EventType.EventSent, EventType.OrchestratorCompleted]
    (timer,) = out.timer_messages
    assert isinstance(timer.event, TimerFiredEvent)
    assert timer.event.event_id == -1 and timer.event.timer_id == 1 and timer.event.fire_at == fire
    assert timer.orchestration_instance.instance_id == "i"
    sub, ev = out.orchestrator_messages
    assert isinstance(sub.event, ExecutionStartedEvent)
    assert sub.orchestration_instance.instance_id == "c1" and len(sub.orchestration_instance.execution_id or "") == 32
    assert sub.event.parent_instance == ParentInstance(
        name="orch", version="1", task_schedule_id=2,
        orchestration_instance=OrchestrationInstance(instance_id="i", execution_id=EXEC))
    assert sub.event.name == "child" and sub.event.input == "5" and sub.event.tags == {"a": "b"}
    created = out.history[3]
    assert isinstance(created, SubOrchestrationInstanceCreatedEvent) and created.instance_id == "c1"
    assert isinstance(ev.event, EventRaisedEvent) and ev.event.name == "ping" and ev.event.input == '{"k":1}'
    assert ev.orchestration_instance == OrchestrationInstance(instance_id="other")
    sent = out.history[4]
    assert isinstance(sent, EventSentEvent) and sent.event_id == 3 and sent.instance_id == "other"


@pytest.mark.parametrize("status", [OrchestrationStatus.Completed, OrchestrationStatus.Failed])
def test_completion_notifies_parent(status: OrchestrationStatus) -> None:
    parent = ParentInstance(name="p", task_schedule_id=7,
                            orchestration_instance=OrchestrationInstance(instance_id="p", execution_id="x" * 32))
    history = [OrchestratorStartedEvent(timestamp=T0), started(parent), OrchestratorCompletedEvent(timestamp=T0)]
    fd = FailureDetails(error_type="E", error_message="m") if status == OrchestrationStatus.Failed else None
    out = run(ReplayState("i", history), [EventRaisedEvent(name="go")],  # type: ignore[arg-type]
              [CompleteOrchestration(id=4, status=status, result='"r"', failure_details=fd)])
    done = out.history[-2]
    assert isinstance(done, ExecutionCompletedEvent) and done.orchestration_status == status and done.event_id == 4
    assert out.history[-1].event_type == EventType.OrchestratorCompleted
    (msg,) = out.orchestrator_messages
    assert msg.orchestration_instance.instance_id == "p"
    if status == OrchestrationStatus.Completed:
        assert isinstance(msg.event, SubOrchestrationInstanceCompletedEvent)
        assert msg.event.task_scheduled_id == 7 and msg.event.result == '"r"'
    else:
        assert isinstance(msg.event, SubOrchestrationInstanceFailedEvent) and msg.event.failure_details == fd
    assert out.status == status and out.is_terminal and out.failure_details == fd


def test_fire_and_forget_child_does_not_notify() -> None:
    parent = ParentInstance(orchestration_instance=OrchestrationInstance(instance_id="p"))
    history = [OrchestratorStartedEvent(), started(parent, tags={"FireAndForget": ""}), OrchestratorCompletedEvent()]
    out = run(ReplayState("i", history), [EventRaisedEvent(name="go")],  # type: ignore[arg-type]
              [CompleteOrchestration(id=1, status=OrchestrationStatus.Completed)])
    assert out.orchestrator_messages == ()


def test_continue_as_new() -> None:
    state = ReplayState("i", past(), id_factory=factory())  # type: ignore[arg-type]
    carry = EventRaisedEvent(name="late", input='"e"', timestamp=datetime(1970, 1, 1, tzinfo=timezone.utc))
    out = run(state, [EventRaisedEvent(name="late", input='"e"')], [
        SendEvent(id=1, instance_id="o", name="n"),
        CompleteOrchestration(id=2, status=OrchestrationStatus.ContinuedAsNew, result="7",
                              carryover_events=(carry,), new_version="2"),
    ])
    assert out.history[-1].event_type == EventType.ContinueAsNew  # DTFx: no OrchestratorCompleted after it
    assert len(out.orchestrator_messages) == 1
    nx = out.continued_as_new
    assert nx is not None and nx.execution_id == f"{1:032x}" and out.status == OrchestrationStatus.Running
    assert nx.started.input == "7" and nx.started.version == "2" and nx.started.name == "orch"
    assert nx.started.orchestration_instance == OrchestrationInstance(instance_id="i", execution_id=nx.execution_id)
    assert [e.event_type for e in nx.new_events] == [EventType.ExecutionStarted, EventType.EventRaised]
    assert nx.new_events[1].timestamp == T0 + timedelta(minutes=1)
    fresh = ReplayState("i", [])
    plan = fresh.prepare(nx.new_events, now=T0)
    assert plan.request is not None and plan.request.execution_id == nx.execution_id


def test_duplicates_and_retry_reuse() -> None:
    hist = past(TaskScheduledEvent(event_id=1, name="a"), TaskFailedEvent(task_scheduled_id=1))
    again = TaskCompletedEvent(task_scheduled_id=1)
    assert is_duplicate(again, hist)  # type: ignore[arg-type]
    hist.append(TaskScheduledEvent(event_id=1, name="a"))  # SDK retry reuses id 1
    assert not is_duplicate(again, hist)  # type: ignore[arg-type]
    assert is_duplicate(started(), hist)  # type: ignore[arg-type]
    timer_hist = past(TimerCreatedEvent(event_id=2, fire_at=T0), TimerFiredEvent(timer_id=2, fire_at=T0))
    assert is_duplicate(TimerFiredEvent(timer_id=2, fire_at=T0), timer_hist)  # type: ignore[arg-type]
    sub = past(SubOrchestrationInstanceCreatedEvent(event_id=3),
               SubOrchestrationInstanceFailedEvent(task_scheduled_id=3))
    assert is_duplicate(SubOrchestrationInstanceCompletedEvent(task_scheduled_id=3), sub)  # type: ignore[arg-type]
    assert not is_duplicate(EventRaisedEvent(name="x"), sub)  # type: ignore[arg-type]


def test_duplicate_in_same_batch_is_dropped() -> None:
    state = ReplayState("i", past(TaskScheduledEvent(event_id=1, name="a")))  # type: ignore[arg-type]
    a, b = TaskCompletedEvent(task_scheduled_id=1), TaskCompletedEvent(task_scheduled_id=1)
    plan = state.prepare([a, b], now=T0)
    assert plan.accepted == (a,) and [d.event for d in plan.dropped] == [b]


def test_out_of_order() -> None:
    hist = past()
    assert is_out_of_order(TaskCompletedEvent(task_scheduled_id=5), hist)  # type: ignore[arg-type]
    assert is_out_of_order(TimerFiredEvent(timer_id=5), hist)  # type: ignore[arg-type]
    assert not is_out_of_order(EventRaisedEvent(name="x"), hist)  # type: ignore[arg-type]
    state = ReplayState("i", hist)  # type: ignore[arg-type]
    early = SubOrchestrationInstanceCompletedEvent(task_scheduled_id=9)
    plan = state.prepare([early, EventRaisedEvent(name="x")], now=T0)
    assert plan.deferred == (early,) and len(plan.accepted) == 1


def test_execution_started_moved_first_and_unknown_instance() -> None:
    state = ReplayState("i", [])
    raised = EventRaisedEvent(name="x")
    s = started()
    plan = state.prepare([raised, s], now=T0)
    assert plan.accepted == (s, raised)
    plan = state.prepare([raised], now=T0)
    assert not plan.executable and plan.dropped[0].reason == "no such instance" and plan.request is None
    assert state.apply(plan, None).history == ()


def test_terminal_instance_drops_everything() -> None:
    hist = past(ExecutionCompletedEvent(event_id=1, orchestration_status=OrchestrationStatus.Completed))
    plan = ReplayState("i", hist).prepare([EventRaisedEvent(name="x")], now=T0)  # type: ignore[arg-type]
    assert not plan.executable and plan.request is None and len(plan.dropped) == 1


def test_termination_without_running_code() -> None:
    parent = ParentInstance(task_schedule_id=3, orchestration_instance=OrchestrationInstance(instance_id="p"))
    hist = [OrchestratorStartedEvent(), started(parent), TaskScheduledEvent(event_id=1), OrchestratorCompletedEvent()]
    state = ReplayState("i", hist)  # type: ignore[arg-type]
    plan = state.prepare([ExecutionTerminatedEvent(input='"why"')], now=T0)
    assert plan.request is None and plan.terminated is not None
    out = state.apply(plan, None)
    assert [e.event_type for e in out.history] == [
        EventType.OrchestratorStarted, EventType.ExecutionTerminated, EventType.ExecutionCompleted,
        EventType.OrchestratorCompleted]
    done = out.history[2]
    assert isinstance(done, ExecutionCompletedEvent) and done.orchestration_status == OrchestrationStatus.Terminated
    assert done.result == '"why"' and done.event_id == 2
    assert out.status == OrchestrationStatus.Terminated and out.output == '"why"'
    assert isinstance(out.orchestrator_messages[0].event, SubOrchestrationInstanceFailedEvent)


def test_suspend_holds_and_resume_releases() -> None:
    state = ReplayState("i", past())  # type: ignore[arg-type]
    sus, ev = ExecutionSuspendedEvent(reason="r"), EventRaisedEvent(name="x")
    plan = state.prepare([sus, ev], now=T0)
    assert plan.held == (ev,) and plan.request is None
    out = state.apply(plan, None)
    assert out.status == OrchestrationStatus.Suspended and not out.ran_runtime
    assert [e.event_type for e in out.history][1:3] == [EventType.ExecutionSuspended, EventType.EventRaised]
    suspended = ReplayState("i", [*past(), *out.history])  # type: ignore[arg-type]
    ev2 = EventRaisedEvent(name="y")
    plan = suspended.prepare([ev2], now=T0)
    assert plan.held == (ev2,) and plan.request is None
    resume = ExecutionResumedEvent()
    plan = suspended.prepare([resume, ev2], now=T0)
    assert plan.held == () and plan.request is not None and plan.request.new_events[1:] == (resume, ev2)
    term = ExecutionTerminatedEvent()
    plan = suspended.prepare([term], now=T0)
    assert plan.terminated is term


def test_long_timer_chain() -> None:
    assert next_timer_hop(T0 + timedelta(days=6), T0) == T0 + timedelta(days=6)
    assert next_timer_hop(T0 + timedelta(days=10), T0) == T0 + timedelta(days=3)
    final = T0 + timedelta(days=10)
    state = ReplayState("i", past())  # type: ignore[arg-type]
    plan = state.prepare([EventRaisedEvent(name="x")], now=T0)
    out = state.apply(plan, EpisodeResult(actions=[CreateTimer(id=1, fire_at=final)]))
    created = out.history[2]
    assert isinstance(created, TimerCreatedEvent) and created.fire_at == final  # the SDK sees one timer
    hop = out.timer_messages[0].event
    assert isinstance(hop, TimerFiredEvent) and hop.fire_at == T0 + timedelta(days=3)
    state = ReplayState("i", [*past(), *out.history])  # type: ignore[arg-type]
    now = T0 + timedelta(days=3)
    plan = state.prepare([hop], now=now)
    assert plan.accepted == () and plan.request is None and len(plan.timer_hops) == 1
    nxt = plan.timer_hops[0].event
    assert isinstance(nxt, TimerFiredEvent) and nxt.fire_at == now + timedelta(days=3) and nxt.timer_id == 1
    out = state.apply(plan, None)
    assert out.history == () and out.timer_messages == plan.timer_hops
    now2 = T0 + timedelta(days=6)
    plan = state.prepare([nxt], now=now2)
    last = plan.timer_hops[0].event
    assert isinstance(last, TimerFiredEvent) and last.fire_at == final
    plan = state.prepare([last], now=final)
    assert plan.accepted == (last,) and plan.request is not None
