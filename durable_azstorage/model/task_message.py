"""A history event addressed to one orchestration instance: what a queue message carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .history import HistoryEvent
from .values import OrchestrationInstance

__all__ = ["OrchestrationExecutionContext", "TaskMessage"]


@dataclass(kw_only=True)
class OrchestrationExecutionContext:
    """Tags of the scheduling orchestration, attached to TaskScheduled/sub-orchestration messages."""

    orchestration_tags: dict[str, str] | None = None


@dataclass(kw_only=True)
class TaskMessage:
    """One history event addressed to one orchestration instance."""

    event: HistoryEvent
    orchestration_instance: OrchestrationInstance
    sequence_number: int = 0
    orchestration_execution_context: OrchestrationExecutionContext | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
