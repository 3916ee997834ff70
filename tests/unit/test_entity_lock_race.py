"""A lock holder's request queued behind others (grant replayed after a failed checkpoint)."""

from __future__ import annotations

from durable_azstorage.model.entities import RequestMessage, SchedulerState


def test_lock_holder_requests_move_to_the_front_in_order() -> None:
    signal = RequestMessage(id="s", operation="add", is_signal=True)
    first = RequestMessage(id="h1", operation="add", parent_instance_id="orch")
    other = RequestMessage(id="o", operation="add", parent_instance_id="someone-else")
    second = RequestMessage(id="h2", operation="get", parent_instance_id="orch")
    state = SchedulerState(queue=[signal, first, other, second], locked_by="orch")
    assert not state.may_dequeue()  # the deadlock: the holder waits for its call, the entity for the holder
    assert state.promote_lock_holder()
    assert [m.id for m in state.queue or []] == ["h1", "h2", "s", "o"]
    assert state.may_dequeue() and state.dequeue().id == "h1"


def test_nothing_moves_without_a_lock_or_a_holder_request() -> None:
    signal = RequestMessage(id="s", operation="add", is_signal=True)
    assert not SchedulerState(queue=[signal]).promote_lock_holder()
    state = SchedulerState(queue=[signal], locked_by="orch")
    assert not state.promote_lock_holder() and [m.id for m in state.queue or []] == ["s"]
