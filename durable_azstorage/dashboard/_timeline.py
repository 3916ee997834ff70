"""An instance's history as Gantt bars: activities, timers, sub-orchestrations, event waits.

Pure code (history events in, JSON-ready dicts out) so the timeline is unit-tested without
storage. DTAS history has no "started waiting for event X" record, so an external event is
drawn from the moment the orchestrator last went idle (its preceding ``OrchestratorCompleted``)
to the event's arrival; a running instance with nothing outstanding gets an open "waiting" bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..model import (
    EventRaisedEvent,
    EventType,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationStatus,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)

__all__ = ["Bar", "build_timeline", "iso_ms"]

_STILL_RUNNING = frozenset(
    {OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended}
)


def iso_ms(value: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds: bars of a quick orchestration last a few ms."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Bar:
    """One row of the Gantt chart; ``end`` None means still open (drawn up to ``now``)."""

    kind: str  # activity | timer | suborchestration | event | waiting
    name: str
    start: datetime
    end: datetime | None
    status: str  # completed | failed | running | scheduled
    event_id: int = -1
    instance_id: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, now: datetime) -> dict[str, Any]:
        until = self.end or now
        return {
            "kind": self.kind,
            "name": self.name,
            "start": iso_ms(self.start),
            "end": iso_ms(self.end),
            "open": self.end is None,
            "durationMs": max(0, round((until - self.start).total_seconds() * 1000)),
            "status": self.status,
            "eventId": self.event_id,
            "instanceId": self.instance_id,
            "detail": self.detail,
            **self.extra,
        }


def build_timeline(
    events: Sequence[HistoryEvent], status: OrchestrationStatus | None, now: datetime
) -> dict[str, Any]:
    """``{"start", "end", "bars"}`` for one execution's history (oldest event first)."""
    bars: list[Bar] = []
    open_by_id: dict[int, Bar] = {}
    timers: dict[int, Bar] = {}
    idle_since: datetime | None = None
    start = events[0].timestamp if events else now
    end: datetime | None = None
    for event in events:
        if isinstance(event, ExecutionStartedEvent):
            start = event.timestamp
        elif isinstance(event, ExecutionCompletedEvent):
            end = event.timestamp
        elif event.event_type == EventType.OrchestratorCompleted:
            idle_since = event.timestamp
        _scheduled(event, bars, open_by_id, timers)
        _finished(event, open_by_id, timers)
        if isinstance(event, EventRaisedEvent):
            arrived = event.timestamp
            began = min(idle_since, arrived) if idle_since is not None else arrived
            bars.append(Bar("event", event.name or "(event)", began, arrived, "completed", event.event_id))
    running = status in _STILL_RUNNING
    for bar in bars:
        if bar.end is None and not running:
            bar.status = "canceled"  # the instance finished without it (terminated, failed, ...)
            bar.end = end or (events[-1].timestamp if events else now)
    if running and idle_since is not None and not any(b.end is None for b in bars):
        bars.append(Bar("waiting", "waiting for an event", idle_since, None, "running"))
    bars.sort(key=lambda b: (b.start, b.event_id))
    return {
        "start": iso_ms(start),
        "end": iso_ms(end),
        "now": iso_ms(now),
        "bars": [b.to_json(now) for b in bars],
    }


def _scheduled(event: HistoryEvent, bars: list[Bar], open_by_id: dict[int, Bar], timers: dict[int, Bar]) -> None:
    bar: Bar | None = None
    if isinstance(event, TaskScheduledEvent):
        bar = Bar("activity", event.name or "(activity)", event.timestamp, None, "running", event.event_id)
        open_by_id[event.event_id] = bar
    elif isinstance(event, SubOrchestrationInstanceCreatedEvent):
        bar = Bar(
            "suborchestration", event.name or "(orchestration)", event.timestamp, None, "running",
            event.event_id, instance_id=event.instance_id,
        )
        open_by_id[event.event_id] = bar
    elif isinstance(event, TimerCreatedEvent):
        bar = Bar("timer", "timer", event.timestamp, None, "scheduled", event.event_id)
        bar.extra["fireAt"] = iso_ms(event.fire_at)
        timers[event.event_id] = bar
    if bar is not None:
        bars.append(bar)


def _finished(event: HistoryEvent, open_by_id: dict[int, Bar], timers: dict[int, Bar]) -> None:
    if isinstance(event, (TaskCompletedEvent, SubOrchestrationInstanceCompletedEvent)):
        bar = open_by_id.pop(event.task_scheduled_id, None)
        if bar is not None:
            bar.end, bar.status = event.timestamp, "completed"
    elif isinstance(event, (TaskFailedEvent, SubOrchestrationInstanceFailedEvent)):
        bar = open_by_id.pop(event.task_scheduled_id, None)
        if bar is not None:
            bar.end, bar.status = event.timestamp, "failed"
            failure = event.failure_details
            bar.detail = str(failure) if failure is not None else (event.reason or None)
    elif isinstance(event, TimerFiredEvent):
        bar = timers.pop(event.timer_id, None)
        if bar is not None:  # the event is created with the timer (delivered later): fire_at is when it fired
            bar.end, bar.status = max(event.fire_at, bar.start), "completed"
