"""Entity JSON as DurableTask.Core / the DF extension write it, and the message sorter rules.

The expected strings are what Newtonsoft produces for Core's ``[DataContract]`` classes
(member order = declaration order, ``EmitDefaultValue=false`` members left out, MinValue dates
without ``Z``); the legacy inputs are the DF extension's ``EntityScheduler`` classes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from durable_azstorage.codec import entity_codec as codec
from durable_azstorage.codec.queue_codec import MessageData
from durable_azstorage.errors import InvalidInstanceIdError, MessageDecodeError
from durable_azstorage.model import EventSentEvent, ExecutionStartedEvent, FailureDetails, OrchestratorStartedEvent
from durable_azstorage.model.entities import (
    EntityId,
    EntityStatus,
    MessageSorter,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    scheduled_request_event_name,
    ticks_from_datetime,
)
from durable_azstorage.runtimes.entities_orchestration import EntityMessageEncoder
from durable_azstorage.storage.queues import visibility_delay_for

GUID = "8e19a3c4-5b1f-4c59-9f7e-0d1f6b2a9c11"
T0 = "2024-05-01T10:00:00.1234567Z"
WINDOW = 30 * 60 * 10_000_000


def test_entity_ids_match_core() -> None:
    assert str(EntityId("counter", "k1")) == "@counter@k1"
    assert EntityId.parse("@counter@k@with@ats") == EntityId("counter", "k@with@ats")
    assert EntityId.parse("@counter@") == EntityId("counter", "")
    assert EntityId.of("Counter", "K") == EntityId("counter", "K")  # the name is lower-cased, the key kept
    for bad in ("counter", "@", "@@k", ""):
        with pytest.raises(InvalidInstanceIdError):
            EntityId.parse(bad)
    assert sorted([EntityId("b", "a"), EntityId("a", "z"), EntityId("a", "b")]) == [
        EntityId("a", "b"),
        EntityId("a", "z"),
        EntityId("b", "a"),
    ]


def test_client_signal_is_core_json() -> None:
    request = RequestMessage(id=GUID, operation="add", is_signal=True, input="5")
    assert codec.encode_request(request) == (
        '{"op":"add","signal":true,"input":"5","id":"8e19a3c4-5b1f-4c59-9f7e-0d1f6b2a9c11",'
        '"Timestamp":"0001-01-01T00:00:00","Predecessor":"0001-01-01T00:00:00",'
        '"IsLockRequest":false,"createTrace":false}'
    )


def test_orchestration_call_round_trips_seven_fraction_digits() -> None:
    text = (
        '{"op":"get","id":"' + GUID + '","parent":"abc","parentExecution":"e1",'
        f'"Timestamp":"{T0}","Predecessor":"2024-05-01T10:00:00.1234566Z",'
        '"IsLockRequest":false,"parentTraceContext":{"traceParent":"00-x"},"createTrace":false}'
    )
    request = codec.decode_request(text)
    assert (request.operation, request.is_signal, request.parent_instance_id) == ("get", False, "abc")
    assert request.timestamp - request.predecessor == 1  # one tick apart: not merged by microseconds
    assert codec.encode_request(request) == text


def test_legacy_extension_request_is_read() -> None:
    # DF extension RequestMessage: no IsLockRequest/createTrace, input as a string, pos omitted.
    text = (
        '{"op":"add","signal":true,"input":"1","id":"'
        + GUID
        + '","Timestamp":"'
        + T0
        + '","Predecessor":"0001-01-01T00:00:00"}'
    )
    request = codec.decode_request(text)
    assert request.is_signal and request.input == "1" and request.predecessor == 0 and request.position == 0


def test_lock_request_form() -> None:
    request = RequestMessage(
        id=GUID, parent_instance_id="o1", parent_execution_id="x", lock_set=(EntityId("a", "1"), EntityId("b", "2"))
    )
    tree = json.loads(codec.encode_request(request))
    assert tree["lockset"] == [{"name": "a", "key": "1"}, {"name": "b", "key": "2"}]
    assert tree["IsLockRequest"] is True and "pos" not in tree and tree["op"] is None
    request.position = 1
    assert json.loads(codec.encode_request(request))["pos"] == 1
    assert codec.decode_request(codec.encode_request(request)).lock_set == request.lock_set


def test_malformed_request_is_a_typed_error() -> None:
    for bad in ("not json", "[]", '{"op":"x"}', '{"id":"' + GUID + '","Timestamp":"yesterday"}'):
        with pytest.raises(MessageDecodeError):
            codec.decode_request(bad)


def test_responses() -> None:
    assert codec.encode_response(ResponseMessage(result="15")) == '{"result":"15"}'
    assert codec.encode_response(ResponseMessage(result="Lock Acquisition Completed")) == (
        '{"result":"Lock Acquisition Completed"}'
    )
    failed = ResponseMessage(
        result='"boom"',
        error_message="ValueError",
        failure_details=FailureDetails(error_type="ValueError", error_message="boom"),
    )
    tree = json.loads(codec.encode_response(failed))
    assert list(tree) == ["result", "exceptionType", "failureDetails"]
    assert tree["failureDetails"]["ErrorType"] == "ValueError" and "$type" not in tree["failureDetails"]
    back = codec.decode_response(codec.encode_response(failed))
    assert back.is_error and back.failure_details is not None and back.failure_details.error_message == "boom"


def test_scheduler_state_both_writers() -> None:
    core = codec.decode_scheduler_state('{"state":"5","sorter":{}}')  # TaskEntityDispatcher
    legacy = codec.decode_scheduler_state('{"exists":true,"state":"5","sorter":{}}')  # DF extension
    for state in (core, legacy):
        assert state.entity_exists and state.entity_state == "5"
    assert codec.decode_scheduler_state('{"sorter":{}}').entity_exists is False
    assert codec.decode_scheduler_state(None).is_empty
    assert codec.encode_scheduler_state(legacy) == '{"exists":true,"state":"5","sorter":{}}'
    assert codec.encode_scheduler_state(SchedulerState()) == '{"sorter":{}}'
    queued = SchedulerState(entity_exists=True, entity_state="1", locked_by="o1")
    queued.enqueue(RequestMessage(id=GUID, operation="add", is_signal=True, parent_instance_id="o2", timestamp=5))
    text = codec.encode_scheduler_state(queued)
    assert list(json.loads(text)) == ["exists", "state", "queue", "lockedBy", "sorter"]
    again = codec.decode_scheduler_state(text)
    assert again.locked_by == "o1" and again.queue is not None and again.queue[0].timestamp == 5
    assert codec.encode_scheduler_state(again) == text


def test_entity_status_custom_status() -> None:
    assert codec.encode_entity_status(EntityStatus(entity_exists=True)) == '{"entityExists":true}'
    assert codec.encode_entity_status(EntityStatus(queue_size=2, locked_by="o")) == '{"queueSize":2,"lockedBy":"o"}'
    assert codec.encode_entity_status(EntityStatus()) == "{}"
    assert codec.decode_entity_status('{"entityExists":true,"queueSize":3}') == EntityStatus(
        entity_exists=True, queue_size=3
    )
    assert codec.decode_entity_status("running") is None


def test_scheduled_event_name_and_queue_delay() -> None:
    due = datetime(2031, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc)
    name = scheduled_request_event_name(ticks_from_datetime(due))
    assert name == "op@2031-01-02T03:04:05.6000000Z"
    assert codec.scheduled_time_from_event_name(name) == due
    from durable_azstorage.model import EventRaisedEvent, OrchestrationInstance, TaskMessage

    md = MessageData(
        activity_id=__import__("uuid").uuid4(),
        task_message=TaskMessage(
            event=EventRaisedEvent(name=name), orchestration_instance=OrchestrationInstance(instance_id="@c@k")
        ),
    )
    assert visibility_delay_for(md, due - timedelta(seconds=30)) == timedelta(seconds=30)


def _req(parent: str, ts: int, pred: int, execution: str = "e") -> RequestMessage:
    return RequestMessage(
        id=f"{parent}-{ts}", parent_instance_id=parent, parent_execution_id=execution, timestamp=ts, predecessor=pred
    )


BASE = ticks_from_datetime(datetime(2024, 5, 1, tzinfo=timezone.utc))


def test_sorter_orders_buffers_and_drops_duplicates() -> None:
    sorter = MessageSorter()
    first, second, third = _req("o", BASE, 0), _req("o", BASE + 1, BASE), _req("o", BASE + 2, BASE + 1)
    assert list(sorter.receive_in_order(third, WINDOW)) == []  # predecessor missing: buffered
    assert sorter.buffered_count == 1
    assert [m.timestamp for m in sorter.receive_in_order(first, WINDOW)] == [BASE]
    assert [m.timestamp for m in sorter.receive_in_order(second, WINDOW)] == [BASE + 1, BASE + 2]
    assert list(sorter.receive_in_order(_req("o", BASE + 1, BASE), WINDOW)) == []  # duplicate
    # A new execution of the sender starts over; clients (no parent) are never sorted.
    assert len(list(sorter.receive_in_order(_req("o", BASE, 0, execution="e2"), WINDOW))) == 1
    client = RequestMessage(id="c", is_signal=True)
    assert list(sorter.receive_in_order(client, WINDOW)) == [client]
    state = SchedulerState(sorter=sorter)
    again = codec.decode_scheduler_state(codec.encode_scheduler_state(state))
    assert again.sorter.received_from_instance is not None
    assert again.sorter.received_from_instance["o"].last == BASE


def test_sorter_labels_strictly_increasing() -> None:
    sorter = MessageSorter()
    a, b = RequestMessage(id="a"), RequestMessage(id="b")
    sorter.label_outgoing(a, "@c@k", BASE, WINDOW)
    sorter.label_outgoing(b, "@C@k", BASE, WINDOW)  # the destination map ignores case, as in .NET
    assert (a.timestamp, a.predecessor) == (BASE, 0)
    assert (b.timestamp, b.predecessor) == (BASE + 1, BASE)


def test_orchestration_labels_are_replay_deterministic() -> None:
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    new = [OrchestratorStartedEvent(timestamp=start + timedelta(seconds=9)), ExecutionStartedEvent(timestamp=start)]
    runs = []
    for episode_clock in (start + timedelta(seconds=1), start + timedelta(seconds=50)):  # a crash re-run
        encoder = EntityMessageEncoder("o1", "x1", [], new)
        kwargs = {"operation": "add", "input": "1", "signal": True, "scheduled_time": None, "now": episode_clock}
        first = encoder.operation(1, target="@c@k", request_id="r1", **kwargs)
        second = encoder.operation(2, target="@c@k", request_id="r2", **kwargs)
        runs.append((first, second))
    assert runs[0] == runs[1]
    first_req, second_req = (codec.decode_request(e.data or "") for e in runs[0])
    assert first_req.timestamp == ticks_from_datetime(start) and second_req.predecessor == first_req.timestamp
    # The next episode continues after what history says was sent.
    past = [
        ExecutionStartedEvent(timestamp=start),
        EventSentEvent(event_id=1, instance_id="@c@k", name="op", input=runs[0][1].data, timestamp=start),
    ]
    later = EntityMessageEncoder("o1", "x1", past).operation(3, target="@c@k", request_id="r3", **kwargs)
    assert codec.decode_request(later.data or "").predecessor == second_req.timestamp
