"""The recorded clock of an episode that sends entity calls or lock requests (worker/episode_clock.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from durable_azstorage.codec import entity_codec
from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, TaskMessage
from durable_azstorage.model.entities import EntityId, RequestMessage
from durable_azstorage.worker.episode_clock import (
    clock_value,
    episode_ids,
    pinned_clock,
    sends_entity_requests_with_answers,
)

CLOCK = datetime(2026, 11, 30, 13, 24, 46, 124741, tzinfo=timezone.utc)


def test_the_clock_round_trips_to_the_microsecond_for_the_same_episode_only() -> None:
    value = clock_value("exec1", 7, CLOCK)
    assert pinned_clock(value, "exec1", 7) == CLOCK
    assert pinned_clock(value, "exec1", 11) is None  # a later episode: that one was committed
    assert pinned_clock(value, "exec2", 7) is None  # another execution (ContinueAsNew, re-create)
    assert pinned_clock(None, "exec1", 7) is None
    assert pinned_clock("garbage", "exec1", 7) is None
    assert pinned_clock("exec1|7|not a time", "exec1", 7) is None


def test_a_clock_given_in_another_zone_is_kept_as_the_same_instant() -> None:
    local = CLOCK.astimezone(timezone(timedelta(hours=2)))
    assert pinned_clock(clock_value("e", 0, local), "e", 0) == CLOCK


def _request(target: str, request: RequestMessage, name: str = "op") -> TaskMessage:
    return TaskMessage(
        event=EventRaisedEvent(name=name, input=entity_codec.encode_request(request)),
        orchestration_instance=OrchestrationInstance(instance_id=target),
    )


def test_only_calls_and_lock_requests_need_the_clock() -> None:
    call = RequestMessage(id="r1", operation="add", is_signal=False, parent_instance_id="o")
    signal = RequestMessage(id="r2", operation="add", is_signal=True, parent_instance_id="o")
    lock = RequestMessage(id="r3", parent_instance_id="o", lock_set=(EntityId.parse("@c@k"),), position=0)
    answer = TaskMessage(event=EventRaisedEvent(name="r1", input="{}"),
                         orchestration_instance=OrchestrationInstance(instance_id="o"))
    assert sends_entity_requests_with_answers([_request("@c@k", call)])
    assert sends_entity_requests_with_answers([_request("@c@k", lock)])
    assert not sends_entity_requests_with_answers([_request("@c@k", signal)])
    assert not sends_entity_requests_with_answers([answer])
    assert not sends_entity_requests_with_answers([])


def test_execution_ids_follow_the_clock_and_differ_within_a_work_item() -> None:
    first, again = episode_ids("i", CLOCK), episode_ids("i", CLOCK)
    ids = [first(), first(), first()]
    assert ids == [again(), again(), again()]  # a re-run with the recorded clock: the same ids
    assert len(set(ids)) == 3 and all(len(x) == 32 and int(x, 16) >= 0 for x in ids)
    assert episode_ids("i", CLOCK + timedelta(microseconds=1))() != ids[0]
    assert episode_ids("j", CLOCK)() != ids[0]
