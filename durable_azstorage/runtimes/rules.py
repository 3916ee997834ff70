"""Inbound-event rules shared by the replay state and the worker (pure functions).

Split from :mod:`.state` to keep both files small; :mod:`.state` re-exports everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..model import (
    EventType,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationStatus,
    TimerFiredEvent,
)

__all__ = [
    "FIRE_AND_FORGET_TAG",
    "LONG_TIMER_INTERVAL",
    "MAX_TIMER_DELAY",
    "UNSUSPENDABLE",
    "execution_started_first",
    "is_duplicate",
    "is_out_of_order",
    "merge_tags",
    "new_execution_id",
    "next_timer_hop",
    "runtime_status",
]

MAX_TIMER_DELAY = timedelta(days=6)
"""Longest single queue delay we use (Durable Functions' ``MaximumDelayTime`` on Azure Storage)."""
LONG_TIMER_INTERVAL = timedelta(days=3)
"""Hop length of a chained long timer (Durable Functions' ``LongRunningTimerIntervalLength``)."""
FIRE_AND_FORGET_TAG = "FireAndForget"
"""DTFx ``OrchestrationTags.FireAndForget``: a sub-orchestration that does not notify its parent."""

# response event type -> the scheduling event type whose EventId it answers
_SCHEDULER_OF: dict[EventType, EventType] = {
    EventType.TaskCompleted: EventType.TaskScheduled,
    EventType.TaskFailed: EventType.TaskScheduled,
    EventType.SubOrchestrationInstanceCompleted: EventType.SubOrchestrationInstanceCreated,
    EventType.SubOrchestrationInstanceFailed: EventType.SubOrchestrationInstanceCreated,
    EventType.TimerFired: EventType.TimerCreated,
}
UNSUSPENDABLE = frozenset({EventType.ExecutionResumed, EventType.ExecutionTerminated})


def new_execution_id() -> str:
    """A DTFx execution id: ``Guid.ToString("N")``, 32 lowercase hex digits."""
    return uuid.uuid4().hex


def _answered_id(event: HistoryEvent) -> int | None:
    if isinstance(event, TimerFiredEvent):
        return event.timer_id
    return getattr(event, "task_scheduled_id", None) if event.event_type in _SCHEDULER_OF else None


def _count(events: Iterable[HistoryEvent], types: set[EventType], event_id: int, *, answered: bool) -> int:
    if answered:
        return sum(1 for e in events if e.event_type in types and _answered_id(e) == event_id)
    return sum(1 for e in events if e.event_type in types and e.event_id == event_id)


def is_out_of_order(event: HistoryEvent, past: Sequence[HistoryEvent]) -> bool:
    """A response whose scheduling event is not in history yet (DTAS ``IsOutOfOrderMessage``).

    Happens when a response beats the history commit (outbound messages are sent before
    history is written). The worker abandons such messages with back-off; after 5 dequeues
    against a non-existent instance DTAS processes and discards them instead (worker rule).
    Entity responses (EventRaised answering an EventSent) are not covered yet.
    """
    scheduler = _SCHEDULER_OF.get(event.event_type)
    answered = _answered_id(event)
    if scheduler is None or answered is None:
        return False
    return _count(past, {scheduler}, answered, answered=False) == 0


def is_duplicate(event: HistoryEvent, past: Sequence[HistoryEvent]) -> bool:
    """A second ExecutionStarted, or a response to work that has already been answered.

    Counted, not just looked up: durabletask reuses a task id for a retried activity, so
    ``TaskScheduled(1), TaskFailed(1), TaskScheduled(1)`` still awaits one more answer.
    """
    if event.event_type == EventType.ExecutionStarted:
        return any(e.event_type == EventType.ExecutionStarted for e in past)
    scheduler = _SCHEDULER_OF.get(event.event_type)
    answered = _answered_id(event)
    if scheduler is None or answered is None:
        return False
    siblings = {t for t, s in _SCHEDULER_OF.items() if s == scheduler}
    scheduled = _count(past, {scheduler}, answered, answered=False)
    return scheduled > 0 and _count(past, siblings, answered, answered=True) >= scheduled


def runtime_status(events: Iterable[HistoryEvent]) -> OrchestrationStatus:
    """Status implied by a history: Pending until ExecutionStarted, then as events say."""
    status = OrchestrationStatus.Pending
    for e in events:
        if isinstance(e, ExecutionStartedEvent):
            status = OrchestrationStatus.Running
        elif isinstance(e, ExecutionCompletedEvent):  # includes ContinueAsNewEvent
            status = e.orchestration_status
        elif e.event_type == EventType.ExecutionSuspended and status == OrchestrationStatus.Running:
            status = OrchestrationStatus.Suspended
        elif e.event_type == EventType.ExecutionResumed and status == OrchestrationStatus.Suspended:
            status = OrchestrationStatus.Running
    return status


def next_timer_hop(final_fire_at: datetime, now: datetime) -> datetime:
    """When the next TimerFired message of a (possibly long) timer should become visible."""
    if final_fire_at - now > MAX_TIMER_DELAY:
        return now + LONG_TIMER_INTERVAL
    return final_fire_at


def execution_started_first(events: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """Core's ``EnsureExecutionStartedIsFirst``: move the first ExecutionStarted to the front."""
    ordered = list(events)
    for i, e in enumerate(ordered):
        if isinstance(e, ExecutionStartedEvent):
            if i:
                ordered.insert(0, ordered.pop(i))
            break
    return ordered


def merge_tags(new: dict[str, str] | None, existing: dict[str, str] | None) -> dict[str, str] | None:
    """DTFx ``OrchestrationTags.MergeTags``: new tags win; FireAndForget is never inherited."""
    if existing is None:
        return dict(new) if new is not None else None
    inherited = {k: v for k, v in existing.items() if k != FIRE_AND_FORGET_TAG}
    if new is None:
        return inherited
    return {**new, **{k: v for k, v in inherited.items() if k not in new}}
