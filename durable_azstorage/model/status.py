"""Runtime status of an orchestration and the state row that describes one."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .values import FailureDetails, OrchestrationInstance, ParentInstance

__all__ = [
    "RUNNING_STATUSES","OrchestrationState", "OrchestrationStatus", "TERMINAL_STATUSES"]


class OrchestrationStatus(enum.IntEnum):
    """DurableTask.Core.OrchestrationStatus; integer values are the wire values."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7

    def __bool__(self) -> bool:
        """Every status is a value: ``Running`` is 0 on the wire, but ``if status:`` must not
        treat a running instance as missing (only ``None`` means "no status")."""
        return True

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OrchestrationStatus.Completed,
        OrchestrationStatus.Failed,
        OrchestrationStatus.Canceled,
        OrchestrationStatus.Terminated,
    }
)

RUNNING_STATUSES = frozenset(
    {
        OrchestrationStatus.Running,
        OrchestrationStatus.Pending,
        OrchestrationStatus.Suspended,
        OrchestrationStatus.ContinuedAsNew,
    }
)
"""Not finished: a waiter keeps waiting and the HTTP status route answers 202."""


@dataclass(kw_only=True)
class OrchestrationState:
    """What the Instances table knows about the latest execution of one instance.

    ``runtime_status`` is ``None`` when the stored status name is unknown (DTAS reads it
    as ``(OrchestrationStatus)(-1)``); readers must not crash on it.
    """

    orchestration_instance: OrchestrationInstance
    name: str | None = None
    version: str | None = None
    runtime_status: OrchestrationStatus | None = None
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    created_time: datetime | None = None
    last_updated_time: datetime | None = None
    completed_time: datetime | None = None
    scheduled_start_time: datetime | None = None
    generation: int | None = None
    tags: dict[str, str] | None = None
    task_hub_name: str | None = None
    parent_instance: ParentInstance | None = None
    failure_details: FailureDetails | None = None
    size: int = 0
    compressed_size: int = 0

    @property
    def instance_id(self) -> str:
        return self.orchestration_instance.instance_id

    @property
    def execution_id(self) -> str | None:
        return self.orchestration_instance.execution_id
