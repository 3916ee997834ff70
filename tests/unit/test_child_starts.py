"""The rule that tells a repeated sub-orchestration start from a deliberate re-creation."""

from __future__ import annotations

from durable_azstorage.model import ExecutionStartedEvent, OrchestrationInstance, ParentInstance
from durable_azstorage.worker.child_starts import is_child_start, repeats_current_start


def _start(execution: str, parent_execution: str = "p1", schedule_id: int = 3) -> ExecutionStartedEvent:
    return ExecutionStartedEvent(
        event_id=-1,
        name="child",
        orchestration_instance=OrchestrationInstance(instance_id="c", execution_id=execution),
        parent_instance=ParentInstance(
            name="parent",
            orchestration_instance=OrchestrationInstance(instance_id="p", execution_id=parent_execution),
            task_schedule_id=schedule_id,
        ),
    )


def test_the_same_scheduling_event_with_a_new_execution_id_repeats_the_start() -> None:
    assert repeats_current_start(_start("b"), [_start("a")])


def test_execution_ids_of_the_parent_compare_without_case() -> None:
    assert repeats_current_start(_start("b", parent_execution="ABC"), [_start("a", parent_execution="abc")])


def test_a_retry_is_scheduled_by_a_new_event_and_re_creates_the_child() -> None:
    assert not repeats_current_start(_start("b", schedule_id=7), [_start("a", schedule_id=3)])


def test_a_parent_that_continued_as_new_re_creates_the_child() -> None:
    assert not repeats_current_start(_start("b", parent_execution="p2"), [_start("a", parent_execution="p1")])


def test_the_same_execution_is_left_to_the_re_delivery_rules() -> None:
    assert not repeats_current_start(_start("a"), [_start("a")])


def test_a_child_with_no_history_or_a_top_level_start_is_new() -> None:
    assert not repeats_current_start(_start("b"), [])
    top = ExecutionStartedEvent(event_id=-1, orchestration_instance=OrchestrationInstance(instance_id="c"))
    assert not repeats_current_start(_start("b"), [top])
    assert not is_child_start(top) and is_child_start(_start("a"))
