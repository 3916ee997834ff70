"""Canonical, SDK-neutral orchestrator actions.

Every runtime adapter (durabletask, Functions 1.x, entities) translates what its SDK asked
for into these dataclasses; the pure replay state (:mod:`.state`) turns them into history
events and outbound messages exactly as DurableTask.Core's ``TaskOrchestrationDispatcher``
does. Keeping one vocabulary means the checkpoint path is written once.

Ids are the SDK's own sequence numbers and are stored verbatim as ``EventId`` (never
renumbered: durabletask numbers from 1 and reuses an id for a retried activity; DTFx from 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from ..model import DistributedTraceContext, FailureDetails, HistoryEvent, OrchestrationStatus

__all__ = [
    "Action",
    "CompleteOrchestration",
    "CreateSubOrchestration",
    "CreateTimer",
    "ScheduleTask",
    "SendEvent",
]


@dataclass(frozen=True, kw_only=True)
class ScheduleTask:
    """Run an activity: TaskScheduled in history, a work-item queue message."""

    id: int
    name: str
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = None
    trace_context: DistributedTraceContext | None = None
    """The scheduler's CLIENT span when an SDK worker emits its own spans (through the sidecar)."""


@dataclass(frozen=True, kw_only=True)
class CreateTimer:
    """A durable timer: TimerCreated in history, a delayed TimerFired to the own control queue."""

    id: int
    fire_at: datetime


@dataclass(frozen=True, kw_only=True)
class CreateSubOrchestration:
    """Start a child orchestration: ExecutionStarted (with ParentInstance) to its control queue."""

    id: int
    name: str
    instance_id: str
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = None
    trace_context: DistributedTraceContext | None = None
    """The scheduler's CLIENT span when an SDK worker emits its own spans (through the sidecar)."""


@dataclass(frozen=True, kw_only=True)
class SendEvent:
    """Raise an event on another instance: EventSent in history, EventRaised to the target.

    ``data`` is the JSON payload; entity messages will later travel as SendEvent too, in the
    legacy DTFx encoding (``Name="op"``), so the table layout stays the .NET one.
    """

    id: int
    instance_id: str
    name: str
    data: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class CompleteOrchestration:
    """End this execution: Completed, Failed, Terminated or ContinuedAsNew.

    For ContinuedAsNew ``result`` is the new input, ``carryover_events`` the unprocessed
    EventRaised events to replay into the next execution, ``new_version`` an optional version.
    """

    id: int
    status: OrchestrationStatus
    result: str | None = None
    failure_details: FailureDetails | None = None
    carryover_events: tuple[HistoryEvent, ...] = field(default_factory=tuple)
    new_version: str | None = None

    def __post_init__(self) -> None:
        allowed = {
            OrchestrationStatus.Completed,
            OrchestrationStatus.Failed,
            OrchestrationStatus.ContinuedAsNew,
            OrchestrationStatus.Terminated,
        }
        if self.status not in allowed:
            raise ValueError(f"CompleteOrchestration cannot end with status {self.status.name}")


Action: TypeAlias = ScheduleTask | CreateTimer | CreateSubOrchestration | SendEvent | CompleteOrchestration
"""Union of every action kind; entity operations will be added here as new members."""
