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
    TimerCreatedEvent,
    TimerFiredEvent,
)

__all__ = [
    "FIRE_AND_FORGET_TAG",
    "HistoryLedger",
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
_SCHEDULERS = frozenset(_SCHEDULER_OF.values())
_TIMER_FIRED, _TIMER_CREATED = EventType.TimerFired, EventType.TimerCreated
_EXECUTION_STARTED = EventType.ExecutionStarted
UNSUSPENDABLE = frozenset({EventType.ExecutionResumed, EventType.ExecutionTerminated})


def new_execution_id() -> str:
    """A DTFx execution id: ``Guid.ToString("N")``, 32 lowercase hex digits."""
    return uuid.uuid4().hex


def _answered_id(event: HistoryEvent) -> int | None:
    if isinstance(event, TimerFiredEvent):
        return event.timer_id
    return getattr(event, "task_scheduled_id", None) if event.event_type in _SCHEDULER_OF else None


class HistoryLedger:
    """What a history has scheduled and answered, counted once and kept up to date.

    The inbound rules below ask, per inbound event, how often its scheduling event and its
    answers occur in history. Asked against the event list, that is a scan per event — a batch
    of *k* answers to a history of *n* events costs *k·n*, which grows with every episode of a
    long orchestration and is quadratic for a large fan-in. The ledger answers in constant time
    and is extended as the episode accepts events.
    """

    def __init__(self, events: Iterable[HistoryEvent] = ()) -> None:
        self._scheduled: dict[tuple[EventType, int], int] = {}
        self._answered: dict[tuple[EventType, int], int] = {}
        self._timers: dict[int, TimerCreatedEvent] = {}
        self.has_started = False
        for event in events:
            self.add(event)

    def add(self, event: HistoryEvent) -> None:
        # Hot: one call per history event per episode. Plain dicts, one type lookup.
        kind = event.event_type
        scheduler = _SCHEDULER_OF.get(kind)
        if scheduler is not None:
            key = (scheduler, event.timer_id if kind is _TIMER_FIRED else event.task_scheduled_id)  # type: ignore[attr-defined]
            self._answered[key] = self._answered.get(key, 0) + 1
        elif kind in _SCHEDULERS:
            key = (kind, event.event_id)
            self._scheduled[key] = self._scheduled.get(key, 0) + 1
            if kind is _TIMER_CREATED and event.event_id not in self._timers:
                self._timers[event.event_id] = event  # type: ignore[assignment]
        elif kind is _EXECUTION_STARTED:
            self.has_started = True

    def is_out_of_order(self, event: HistoryEvent) -> bool:
        """See :func:`is_out_of_order`."""
        scheduler = _SCHEDULER_OF.get(event.event_type)
        answered = _answered_id(event)
        if scheduler is None or answered is None:
            return False
        return self._scheduled.get((scheduler, answered), 0) == 0

    def is_duplicate(self, event: HistoryEvent) -> bool:
        """See :func:`is_duplicate`."""
        if event.event_type == EventType.ExecutionStarted:
            return self.has_started
        scheduler = _SCHEDULER_OF.get(event.event_type)
        answered = _answered_id(event)
        if scheduler is None or answered is None:
            return False
        scheduled = self._scheduled.get((scheduler, answered), 0)
        return scheduled > 0 and self._answered.get((scheduler, answered), 0) >= scheduled

    def timer_created(self, timer_id: int) -> TimerCreatedEvent | None:
        """The first ``TimerCreated`` with this id."""
        return self._timers.get(timer_id)


def is_out_of_order(event: HistoryEvent, past: Sequence[HistoryEvent]) -> bool:
    """A response whose scheduling event is not in history yet (DTAS ``IsOutOfOrderMessage``).

    Happens when a response beats the history commit (outbound messages are sent before
    history is written). The worker abandons such messages with back-off; after 5 dequeues
    against a non-existent instance DTAS processes and discards them instead (worker rule).
    Entity responses (EventRaised answering an EventSent) are not covered yet.
    """
    return HistoryLedger(past).is_out_of_order(event)


def is_duplicate(event: HistoryEvent, past: Sequence[HistoryEvent]) -> bool:
    """A second ExecutionStarted, or a response to work that has already been answered.

    Counted, not just looked up: durabletask reuses a task id for a retried activity, so
    ``TaskScheduled(1), TaskFailed(1), TaskScheduled(1)`` still awaits one more answer.
    """
    return HistoryLedger(past).is_duplicate(event)


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
