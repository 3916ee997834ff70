"""Value objects that travel inside history events, queue messages and status rows.

They mirror the DurableTask.Core data contracts member for member so that the codecs can
translate them without loss; names are Pythonic, the .NET names live in the codecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "DistributedTraceContext",
    "FailureDetails",
    "OrchestrationInstance",
    "ParentInstance",
]


@dataclass(kw_only=True)
class OrchestrationInstance:
    """An instance id plus, optionally, one execution (generation) of it.

    ``execution_id=None`` means "whatever execution is current", which DTAS uses for
    client-sent management messages (raise event, terminate).
    """

    instance_id: str
    execution_id: str | None = None


@dataclass(kw_only=True)
class ParentInstance:
    """The parent orchestration of a sub-orchestration (DurableTask.Core.ParentInstance)."""

    name: str | None = None
    orchestration_instance: OrchestrationInstance | None = None
    task_schedule_id: int = 0
    version: str | None = None


@dataclass(kw_only=True)
class DistributedTraceContext:
    """W3C trace context carried from a scheduler to the scheduled work."""

    trace_parent: str | None = None
    trace_state: str | None = None
    id: str | None = None
    span_id: str | None = None
    activity_start_time: datetime | None = None


@dataclass(kw_only=True)
class FailureDetails:
    """Structured error of a failed activity, sub-orchestration or orchestration."""

    error_type: str
    error_message: str
    stack_trace: str | None = None
    inner_failure: FailureDetails | None = None
    is_non_retriable: bool = False
    properties: dict[str, Any] | None = None

    def __str__(self) -> str:
        # DTAS writes ``FailureDetails.ToString()`` into the Instances ``Output`` column.
        return f"{self.error_type}: {self.error_message}"
