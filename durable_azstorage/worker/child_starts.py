"""A sub-orchestration is started once, even when its parent sends the start twice.

The parent's checkpoint sends its outbound messages before it writes its history (the DTAS
order), and the child's execution id is chosen afresh each time the parent's episode runs. A
parent that crashes between the two runs the episode again on another worker and sends a second
``ExecutionStarted`` for the same child instance with a *new* execution id. Read naively, that
second start re-creates the child: the child runs twice and, were it already finished, its
parent would hear from it twice.

Both starts name the same scheduling event of the same parent execution (``ParentInstance``:
the parent's instance and execution id and the ``TaskScheduleId`` of its
``SubOrchestrationInstanceCreated``), while a deliberate re-creation never does: a retried
sub-orchestration is scheduled by a new event, a parent that continued as new has a new
execution id. So a start whose parent reference equals that of the child's current execution is
the same logical start, and is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import ExecutionStartedEvent, HistoryEvent, ParentInstance

__all__ = ["is_child_start", "repeats_current_start"]


def is_child_start(event: HistoryEvent) -> bool:
    return isinstance(event, ExecutionStartedEvent) and event.parent_instance is not None


def repeats_current_start(start: ExecutionStartedEvent, current: Sequence[HistoryEvent]) -> bool:
    """True when ``start`` is a second copy of the start of the child's current execution."""
    existing = next((e for e in current if isinstance(e, ExecutionStartedEvent)), None)
    if existing is None or start.parent_instance is None or existing.parent_instance is None:
        return False
    if _execution(start) and _execution(start) == _execution(existing):
        return False  # the very same execution: the ordinary re-delivery rules apply
    return _parent_key(start.parent_instance) == _parent_key(existing.parent_instance)


def _execution(event: ExecutionStartedEvent) -> str:
    return (event.orchestration_instance.execution_id or "") if event.orchestration_instance else ""


def _parent_key(parent: ParentInstance) -> tuple[str, str, int]:
    instance = parent.orchestration_instance
    return (
        (instance.instance_id or "") if instance else "",
        (instance.execution_id or "").lower() if instance else "",
        parent.task_schedule_id,
    )
