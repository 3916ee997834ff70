"""Retried activities: which attempt a response answers (pure rule of runtimes/attempts.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from durable_azstorage.model import (
    HistoryEvent,
    OrchestratorStartedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)
from durable_azstorage.runtimes.attempts import answers_an_earlier_attempt, scheduling_episodes

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _history() -> list[HistoryEvent]:
    return [
        OrchestratorStartedEvent(timestamp=T),
        TaskScheduledEvent(event_id=0, name="a", timestamp=T),
        OrchestratorStartedEvent(timestamp=T),
        TaskFailedEvent(task_scheduled_id=0, reason="boom", timestamp=T),
        TimerCreatedEvent(event_id=1, fire_at=T, timestamp=T),
        OrchestratorStartedEvent(timestamp=T),
        TimerFiredEvent(timer_id=1, fire_at=T, timestamp=T),
        TaskScheduledEvent(event_id=0, name="a", timestamp=T),
    ]


def test_attempts_are_told_apart_by_their_scheduling_episode() -> None:
    past = _history()
    assert scheduling_episodes(0, past) == [1, 3]
    late = TaskCompletedEvent(task_scheduled_id=0, result='"old"', timestamp=T)
    assert answers_an_earlier_attempt(late, 1, past)
    assert not answers_an_earlier_attempt(late, 3, past)


def test_unknown_episode_or_single_attempt_falls_back_to_counting() -> None:
    past = _history()
    late = TaskCompletedEvent(task_scheduled_id=0, result='"old"', timestamp=T)
    assert not answers_an_earlier_attempt(late, None, past)
    assert not answers_an_earlier_attempt(late, -1, past)
    assert not answers_an_earlier_attempt(late, 1, past[:3])
    fired = TimerFiredEvent(timer_id=1, fire_at=T, timestamp=T)
    assert not answers_an_earlier_attempt(fired, 1, past)
