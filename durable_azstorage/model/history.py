"""The 22 DurableTask.Core history event types (``EventType`` 0-21).

Each class carries exactly the data members DurableTask.Core serialises, so that a
history written by .NET reads back into these objects and is written out again unchanged.
Only ``ExecutionFailed`` (2) has no .NET class; it exists here so readers stay tolerant.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar

from .status import OrchestrationState, OrchestrationStatus
from .values import DistributedTraceContext, FailureDetails, OrchestrationInstance, ParentInstance

__all__ = [
    "ContinueAsNewEvent",
    "EVENT_CLASSES",
    "EventRaisedEvent",
    "EventSentEvent",
    "EventType",
    "ExecutionCompletedEvent",
    "ExecutionFailedEvent",
    "ExecutionResumedEvent",
    "ExecutionRewoundEvent",
    "ExecutionStartedEvent",
    "ExecutionSuspendedEvent",
    "ExecutionTerminatedEvent",
    "GenericEvent",
    "HistoryEvent",
    "HistoryStateEvent",
    "OrchestratorCompletedEvent",
    "OrchestratorStartedEvent",
    "SubOrchestrationInstanceCompletedEvent",
    "SubOrchestrationInstanceCreatedEvent",
    "SubOrchestrationInstanceFailedEvent",
    "TaskCompletedEvent",
    "TaskFailedEvent",
    "TaskScheduledEvent",
    "TimerCreatedEvent",
    "TimerFiredEvent",
    "utc_now",
]


def utc_now() -> datetime:
    """Aware UTC now; every timestamp in the model is aware UTC."""
    return datetime.now(timezone.utc)


class EventType(enum.IntEnum):
    """DurableTask.Core.History.EventType; values are only ever appended upstream."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


@dataclass(kw_only=True)
class HistoryEvent:
    """Base of every history event: id, replay flag and creation time."""

    EVENT_TYPE: ClassVar[EventType]

    event_id: int = -1
    is_played: bool = False
    timestamp: datetime = field(default_factory=utc_now)

    @property
    def event_type(self) -> EventType:
        return self.EVENT_TYPE


@dataclass(kw_only=True)
class ExecutionStartedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionStarted

    orchestration_instance: OrchestrationInstance | None = None
    parent_instance: ParentInstance | None = None
    name: str | None = None
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = None
    correlation: str | None = None
    parent_trace_context: DistributedTraceContext | None = None
    scheduled_start_time: datetime | None = None
    generation: int | None = None
    generate_new_trace: bool = False


@dataclass(kw_only=True)
class ExecutionCompletedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionCompleted

    orchestration_status: OrchestrationStatus = OrchestrationStatus.Completed
    result: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(kw_only=True)
class ExecutionFailedEvent(HistoryEvent):
    """Reserved enum value with no .NET class; never written, tolerated on read."""

    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionFailed


@dataclass(kw_only=True)
class ExecutionTerminatedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionTerminated

    input: str | None = None


@dataclass(kw_only=True)
class TaskScheduledEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.TaskScheduled

    name: str | None = None
    version: str | None = None
    input: str | None = None
    parent_trace_context: DistributedTraceContext | None = None
    tags: dict[str, str] | None = None


@dataclass(kw_only=True)
class TaskCompletedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.TaskCompleted

    task_scheduled_id: int = -1
    result: str | None = None


@dataclass(kw_only=True)
class TaskFailedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.TaskFailed

    task_scheduled_id: int = -1
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(kw_only=True)
class SubOrchestrationInstanceCreatedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.SubOrchestrationInstanceCreated

    name: str | None = None
    version: str | None = None
    instance_id: str | None = None
    input: str | None = None
    client_span_id: str | None = None
    tags: dict[str, str] | None = None


@dataclass(kw_only=True)
class SubOrchestrationInstanceCompletedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.SubOrchestrationInstanceCompleted

    task_scheduled_id: int = -1
    result: str | None = None


@dataclass(kw_only=True)
class SubOrchestrationInstanceFailedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.SubOrchestrationInstanceFailed

    task_scheduled_id: int = -1
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(kw_only=True)
class TimerCreatedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.TimerCreated

    fire_at: datetime = field(default_factory=utc_now)


@dataclass(kw_only=True)
class TimerFiredEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.TimerFired

    timer_id: int = -1
    fire_at: datetime = field(default_factory=utc_now)


@dataclass(kw_only=True)
class OrchestratorStartedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.OrchestratorStarted


@dataclass(kw_only=True)
class OrchestratorCompletedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.OrchestratorCompleted


@dataclass(kw_only=True)
class EventSentEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.EventSent

    instance_id: str | None = None
    name: str | None = None
    input: str | None = None


@dataclass(kw_only=True)
class EventRaisedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.EventRaised

    name: str | None = None
    input: str | None = None
    parent_trace_context: DistributedTraceContext | None = None


@dataclass(kw_only=True)
class ContinueAsNewEvent(ExecutionCompletedEvent):
    """Derives from ExecutionCompleted in .NET; status is always ContinuedAsNew."""

    EVENT_TYPE: ClassVar[EventType] = EventType.ContinueAsNew

    orchestration_status: OrchestrationStatus = OrchestrationStatus.ContinuedAsNew


@dataclass(kw_only=True)
class GenericEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.GenericEvent

    data: str | None = None


@dataclass(kw_only=True)
class HistoryStateEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.HistoryState

    state: OrchestrationState | None = None


@dataclass(kw_only=True)
class ExecutionSuspendedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionSuspended

    reason: str | None = None


@dataclass(kw_only=True)
class ExecutionResumedEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionResumed

    reason: str | None = None


@dataclass(kw_only=True)
class ExecutionRewoundEvent(HistoryEvent):
    EVENT_TYPE: ClassVar[EventType] = EventType.ExecutionRewound

    reason: str | None = None
    parent_execution_id: str | None = None
    instance_id: str | None = None
    parent_trace_context: DistributedTraceContext | None = None


EVENT_CLASSES: dict[EventType, type[HistoryEvent]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        ExecutionStartedEvent,
        ExecutionCompletedEvent,
        ExecutionFailedEvent,
        ExecutionTerminatedEvent,
        TaskScheduledEvent,
        TaskCompletedEvent,
        TaskFailedEvent,
        SubOrchestrationInstanceCreatedEvent,
        SubOrchestrationInstanceCompletedEvent,
        SubOrchestrationInstanceFailedEvent,
        TimerCreatedEvent,
        TimerFiredEvent,
        OrchestratorStartedEvent,
        OrchestratorCompletedEvent,
        EventSentEvent,
        EventRaisedEvent,
        ContinueAsNewEvent,
        GenericEvent,
        HistoryStateEvent,
        ExecutionSuspendedEvent,
        ExecutionResumedEvent,
        ExecutionRewoundEvent,
    )
}
