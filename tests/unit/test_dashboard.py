"""The dashboard's pure parts: the instance timeline (Gantt bars), the instances filter, the counter hook."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from durable_azstorage.codec.instance_codec import query_filter
from durable_azstorage.dashboard._timeline import build_timeline
from durable_azstorage.model import (
    EventRaisedEvent,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    InstanceQuery,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    SubOrchestrationInstanceCreatedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def started() -> ExecutionStartedEvent:
    return ExecutionStartedEvent(
        event_id=-1, timestamp=at(0), name="o", orchestration_instance=OrchestrationInstance(instance_id="i")
    )


def test_activities_timers_suborchestrations_and_events_become_bars() -> None:
    events = [
        OrchestratorStartedEvent(timestamp=at(0)),
        started(),
        TaskScheduledEvent(event_id=0, timestamp=at(10), name="charge"),
        SubOrchestrationInstanceCreatedEvent(event_id=1, timestamp=at(10), name="ship", instance_id="i-child"),
        OrchestratorCompletedEvent(timestamp=at(12)),
        TaskCompletedEvent(timestamp=at(110), task_scheduled_id=0, result="1"),
        TaskFailedEvent(timestamp=at(400), task_scheduled_id=1, reason="boom"),
        TimerCreatedEvent(event_id=2, timestamp=at(410), fire_at=at(1410)),
        TimerFiredEvent(timestamp=at(410), timer_id=2, fire_at=at(1410)),
        OrchestratorCompletedEvent(timestamp=at(420)),
        EventRaisedEvent(timestamp=at(2000), name="approve"),
        ExecutionCompletedEvent(timestamp=at(2010), orchestration_status=OrchestrationStatus.Completed),
    ]
    timeline = build_timeline(events, OrchestrationStatus.Completed, now=at(5000))
    bars = {b["name"]: b for b in timeline["bars"]}
    assert bars["charge"]["kind"] == "activity"
    assert (bars["charge"]["status"], bars["charge"]["durationMs"]) == ("completed", 100)
    assert bars["ship"]["kind"] == "suborchestration" and bars["ship"]["instanceId"] == "i-child"
    assert (bars["ship"]["status"], bars["ship"]["detail"], bars["ship"]["durationMs"]) == ("failed", "boom", 390)
    # TimerFired is written when the timer is created; the bar ends when it fires.
    assert (bars["timer"]["durationMs"], bars["timer"]["status"]) == (1000, "completed")
    # An event waits from the moment the orchestrator went idle until it arrived.
    assert bars["approve"]["kind"] == "event" and bars["approve"]["start"] == "2026-01-01T00:00:00.420Z"
    assert bars["approve"]["durationMs"] == 1580
    assert timeline["start"] == "2026-01-01T00:00:00.000Z" and timeline["end"] == "2026-01-01T00:00:02.010Z"


def test_open_work_runs_to_now_while_running_and_is_canceled_when_finished() -> None:
    events = [started(), TaskScheduledEvent(event_id=0, timestamp=at(10), name="slow"),
              OrchestratorCompletedEvent(timestamp=at(12))]
    running = build_timeline(events, OrchestrationStatus.Running, now=at(1010))["bars"]
    assert [(b["name"], b["open"], b["status"], b["durationMs"]) for b in running] == [("slow", True, "running", 1000)]
    ended = [*events, ExecutionCompletedEvent(timestamp=at(500), orchestration_status=OrchestrationStatus.Terminated)]
    [bar] = build_timeline(ended, OrchestrationStatus.Terminated, now=at(1010))["bars"]
    assert (bar["status"], bar["open"], bar["durationMs"]) == ("canceled", False, 490)


def test_a_running_instance_with_nothing_outstanding_is_waiting() -> None:
    events = [started(), TaskScheduledEvent(event_id=0, timestamp=at(10), name="a"),
              TaskCompletedEvent(timestamp=at(20), task_scheduled_id=0),
              OrchestratorCompletedEvent(timestamp=at(30))]
    bars = build_timeline(events, OrchestrationStatus.Running, now=at(1030))["bars"]
    assert bars[-1]["kind"] == "waiting" and bars[-1]["open"] and bars[-1]["durationMs"] == 1000
    assert build_timeline([], OrchestrationStatus.Pending, now=at(0))["bars"] == []


def test_instance_filter_is_one_odata_expression() -> None:
    assert query_filter(InstanceQuery()) is None
    assert query_filter(InstanceQuery(exclude_entities=True)) == "PartitionKey lt '@' or PartitionKey ge 'A'"
    text = query_filter(
        InstanceQuery.of(
            runtime_status=[OrchestrationStatus.Running],
            name_prefix="hello",
            updated_from=datetime(2026, 1, 2, tzinfo=timezone.utc),
            instance_id_prefix="ord",
            exclude_entities=True,
        )
    )
    assert text == (
        "(LastUpdatedTime ge datetime'2026-01-02T00:00:00.0000000Z') and "
        "(Name ge 'hello') and (Name lt 'hellp') and "
        "(RuntimeStatus eq 'Running') and (PartitionKey ge 'ord') and (PartitionKey lt 'ore')"
    )
    assert "(Name ge 'o''b') and (Name lt 'o''c')" in (query_filter(InstanceQuery(name_prefix="o'b")) or "")


def test_counted_account_keeps_a_hook_the_caller_installed() -> None:
    from durable_azstorage.connection import StorageAccount
    from durable_azstorage.dashboard import counted_account

    seen: list[object] = []
    account = StorageAccount.from_connection_string("UseDevelopmentStorage=true", raw_request_hook=seen.append)
    counted, counter = counted_account(account)

    class Request:
        class http_request:  # the shape of azure-core's PipelineRequest
            method = "GET"
            url = "http://127.0.0.1:10002/devstoreaccount1/Tables"

    counted.client_kwargs["raw_request_hook"](Request)
    assert len(seen) == 1 and counter.total == 1 and counter.by_service() == {"table": 1}
