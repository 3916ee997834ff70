"""The counted inbound rules equal the definition they replace, on random histories.

The definition, written out naively here (a scan per question): an answer is out of order when
history has no scheduling event for its id; a duplicate when history has as many answers for the
id (TaskCompleted and TaskFailed alike) as scheduling events, and at least one of those.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from durable_azstorage.model import (
    EventType,
    ExecutionStartedEvent,
    HistoryEvent,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)
from durable_azstorage.runtimes.rules import HistoryLedger, is_duplicate, is_out_of_order

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SCHEDULER = {
    EventType.TaskCompleted: EventType.TaskScheduled,
    EventType.TaskFailed: EventType.TaskScheduled,
    EventType.SubOrchestrationInstanceCompleted: EventType.SubOrchestrationInstanceCreated,
    EventType.SubOrchestrationInstanceFailed: EventType.SubOrchestrationInstanceCreated,
    EventType.TimerFired: EventType.TimerCreated,
}


def _answered(e: HistoryEvent) -> int:
    return e.timer_id if isinstance(e, TimerFiredEvent) else e.task_scheduled_id  # type: ignore[attr-defined, no-any-return]


def naive_out_of_order(e: HistoryEvent, past: list[HistoryEvent]) -> bool:
    if e.event_type not in SCHEDULER:
        return False
    return not any(p.event_type == SCHEDULER[e.event_type] and p.event_id == _answered(e) for p in past)


def naive_duplicate(e: HistoryEvent, past: list[HistoryEvent]) -> bool:
    if isinstance(e, ExecutionStartedEvent):
        return any(isinstance(p, ExecutionStartedEvent) for p in past)
    if e.event_type not in SCHEDULER:
        return False
    scheduler = SCHEDULER[e.event_type]
    scheduled = sum(1 for p in past if p.event_type == scheduler and p.event_id == _answered(e))
    answers = sum(1 for p in past if SCHEDULER.get(p.event_type) == scheduler and _answered(p) == _answered(e))
    return scheduled > 0 and answers >= scheduled


def _random_event(rng: random.Random) -> HistoryEvent:
    i = rng.randrange(4)
    return rng.choice([
        lambda: TaskScheduledEvent(event_id=i, name="a"),
        lambda: TaskCompletedEvent(task_scheduled_id=i),
        lambda: TaskFailedEvent(task_scheduled_id=i),
        lambda: SubOrchestrationInstanceCreatedEvent(event_id=i, instance_id="c"),
        lambda: SubOrchestrationInstanceCompletedEvent(task_scheduled_id=i),
        lambda: SubOrchestrationInstanceFailedEvent(task_scheduled_id=i),
        lambda: TimerCreatedEvent(event_id=i, fire_at=NOW),
        lambda: TimerFiredEvent(timer_id=i, fire_at=NOW),
        lambda: ExecutionStartedEvent(name="o"),
    ])()


def test_ledger_answers_as_the_scans_did_on_random_histories() -> None:
    rng = random.Random(20261130)
    for _ in range(400):
        past = [_random_event(rng) for _ in range(rng.randrange(12))]
        ledger = HistoryLedger(past)
        for _ in range(8):
            event = _random_event(rng)
            assert ledger.is_out_of_order(event) == naive_out_of_order(event, past), (event, past)
            assert ledger.is_duplicate(event) == naive_duplicate(event, past), (event, past)
            assert is_out_of_order(event, past) == naive_out_of_order(event, past)
            assert is_duplicate(event, past) == naive_duplicate(event, past)
            past.append(event)
            ledger.add(event)


def test_a_retried_activity_reusing_its_task_id_awaits_one_more_answer() -> None:
    ledger = HistoryLedger([TaskScheduledEvent(event_id=1), TaskFailedEvent(task_scheduled_id=1)])
    assert ledger.is_duplicate(TaskCompletedEvent(task_scheduled_id=1))
    ledger.add(TaskScheduledEvent(event_id=1))
    assert not ledger.is_duplicate(TaskCompletedEvent(task_scheduled_id=1))


def test_the_first_timer_created_with_an_id_is_the_one_a_hop_continues() -> None:
    first = TimerCreatedEvent(event_id=3, fire_at=NOW)
    ledger = HistoryLedger([first, TimerCreatedEvent(event_id=3, fire_at=NOW)])
    assert ledger.timer_created(3) is first and ledger.timer_created(4) is None
