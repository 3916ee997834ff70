from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable_azstorage.codec.netjson import CORE_DICT_STRING_OBJECT, CORE_DICT_STRING_STRING
from durable_azstorage.codec.queue_codec import (
    MAX_QUEUE_PAYLOAD_BYTES,
    TYPE_NAMES,
    MessageData,
    decode_history_event,
    decode_message_data,
    decode_task_message,
    encode_message_data,
    gunzip_text,
    gzip_text,
    history_event_from_tree,
    large_message_blob_name,
    large_message_wrapper,
    needs_blob,
    prepare_queue_message,
)
from durable_azstorage.errors import MessageDecodeError, UnknownTypeNameError
from durable_azstorage.model import (
    EventType,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationExecutionContext,
    OrchestrationInstance,
    OrchestratorStartedEvent,
    SubOrchestrationInstanceCreatedEvent,
    TaskFailedEvent,
    TaskMessage,
    TaskScheduledEvent,
    TimerFiredEvent,
)

from .codec_samples import ALL_CLASSES, FAILURE, INSTANCE, T0, any_event, empty_event, full_event
from .golden import golden_bytes, golden_names

ACTIVITY = uuid.UUID("5406d369-4369-4673-afae-6671a2fa1e57")


def envelope(event: HistoryEvent, **kw: Any) -> MessageData:
    return MessageData(
        activity_id=kw.pop("activity_id", ACTIVITY),
        task_message=TaskMessage(event=event, orchestration_instance=kw.pop("instance", INSTANCE)),
        **kw,
    )


def pairs_tree(text: str) -> Any:
    """Parsed JSON whose objects are key lists, so member order can be asserted."""
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


def objects_with_path(tree: Any, path: str = "$") -> list[tuple[str, list[tuple[str, Any]]]]:
    found: list[tuple[str, list[tuple[str, Any]]]] = []
    if isinstance(tree, list) and all(isinstance(p, tuple) and len(p) == 2 for p in tree):
        found.append((path, tree))
        for key, value in tree:
            found.extend(objects_with_path(value, f"{path}.{key}"))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(objects_with_path(item, f"{path}[]"))
    return found


# --------------------------------------------------------------------------- golden files


def test_every_golden_payload_decodes() -> None:
    assert len(golden_names()) >= 8
    for name in golden_names():
        raw = golden_bytes(name)
        if name.startswith("08_"):
            decode_message_data(json.dumps(json.loads(raw)["Data"]))
        elif name.startswith("10_"):
            decode_history_event(raw)
        elif name.startswith("11_"):
            state = json.loads(raw.decode("utf-8-sig"))
            [history_event_from_tree(e) for e in state["Events"] + state["NewEvents"]]
        elif name.startswith("12_"):
            decode_task_message(raw)
        else:
            decode_message_data(raw)


def test_golden_01_workitem_task_scheduled() -> None:
    md = decode_message_data(golden_bytes("01_workitem_queue_TaskScheduled_MessageData.json"))
    assert md.activity_id == uuid.UUID("d96bfaf1-e29d-4f65-8e64-502d6112f967")
    assert md.sequence_number == 6 and md.episode == 3 and md.compressed_blob_name is None
    assert md.sender == OrchestrationInstance(
        instance_id="f71ac761454f41468d9923ac39e9bdbc", execution_id="f6ac7180e1ac41498e8afe327ee18518"
    )
    tm = md.task_message
    assert tm is not None and tm.orchestration_instance == md.sender
    assert tm.orchestration_execution_context == OrchestrationExecutionContext(orchestration_tags={})
    assert tm.event == TaskScheduledEvent(
        event_id=2,
        name="TestFunction_Activity",
        version="",
        input='["London"]',
        timestamp=datetime(2023, 4, 5, 3, 31, 23, 626892, tzinfo=timezone.utc),
    )


@pytest.mark.parametrize(
    "name",
    [
        "02a_control_queue_ExecutionStarted_MessageData.assembled_net_core.json",
        "02b_control_queue_ExecutionStarted_MessageData.assembled_net_framework.json",
    ],
)
def test_golden_02_execution_started_both_dictionary_spellings(name: str) -> None:
    md = decode_message_data(golden_bytes(name))
    assert md.sequence_number == 40 and md.episode is None
    assert md.sender == OrchestrationInstance(instance_id="", execution_id="")
    tm = md.task_message
    assert tm is not None and tm.orchestration_execution_context is None
    ev = tm.event
    assert isinstance(ev, ExecutionStartedEvent)
    assert ev.orchestration_instance == OrchestrationInstance(
        instance_id="2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11", execution_id="aae324dcc8f943e490b37ec5e5bbf9da"
    )
    assert (ev.name, ev.version, ev.input, ev.tags) == ("OrchestrationName", "2.0", "input", {"tag1": "tagValue"})
    assert ev.generation == 0 and ev.scheduled_start_time is None and ev.parent_instance is None
    assert ev.timestamp == datetime(2023, 3, 24, 20, 53, 5, 909351, tzinfo=timezone.utc)


def test_golden_03a_data_contract_timer_fired() -> None:
    md = decode_message_data(golden_bytes("03a_control_queue_TimerFired_MessageData_DataContractMixed.unescaped.json"))
    assert md.episode == 1 and md.sequence_number == 147825
    assert md.serializable_trace_context is not None and md.serializable_trace_context.startswith('{"$id":"1"')
    tm = md.task_message
    assert tm is not None
    assert tm.orchestration_instance.instance_id == "8f30203236d34f8ea5eeff5428eb5ee7:20"
    assert tm.event == TimerFiredEvent(
        event_id=-1,
        timer_id=1,
        fire_at=datetime(2024, 3, 14, 19, 0, 5, 56336, tzinfo=timezone.utc),
        timestamp=datetime(2024, 3, 14, 16, 0, 5, 128542, tzinfo=timezone.utc),
    )


def test_golden_08_v1_message_data() -> None:
    data = json.loads(golden_bytes("08_related_cosmosdb_fork_queue_envelope_MessageData_v1x_ExecutionStarted.json"))
    md = decode_message_data(json.dumps(data["Data"]))
    assert md.sequence_number == 0 and md.sender is None
    assert md.task_message is not None
    ev = md.task_message.event
    assert isinstance(ev, ExecutionStartedEvent)
    assert ev.input == '"World"' and ev.tags is None and ev.generation is None


def test_golden_10_11_12_core_serialisation() -> None:
    ev = decode_history_event(golden_bytes("10_core_ExecutionStartedEvent_assemblyQualified.servicebus-testdata.json"))
    assert isinstance(ev, ExecutionStartedEvent) and ev.tags == {"versiontag": "sample_value"} and ev.input == "null"

    state = json.loads(golden_bytes("11_core_OrchestrationRuntimeState_history.servicebus-testdata.json"))
    events = [history_event_from_tree(e) for e in state["Events"]]
    assert [e.event_type for e in events] == [
        EventType.OrchestratorStarted,
        EventType.ExecutionStarted,
        EventType.TaskScheduled,
        EventType.OrchestratorCompleted,
    ]
    assert events[1].is_played and isinstance(events[2], TaskScheduledEvent) and events[2].input is None

    tm = decode_task_message(
        golden_bytes("12_core_TaskMessage_SubOrchestrationInstanceCreated_v1.servicebus-testdata.json")
    )
    assert tm.event == SubOrchestrationInstanceCreatedEvent(
        name="Name",
        version="Version",
        instance_id="InstanceId",
        input="Input",
        timestamp=datetime(2018, 4, 13, 1, 24, 59, 931852, tzinfo=timezone.utc),
    )
    assert tm.orchestration_instance == OrchestrationInstance(instance_id="InstanceId", execution_id="ExecutionId")


# --------------------------------------------------------------------------- writer shape


def test_reference_sample_shape_section_4_3() -> None:
    instance = OrchestrationInstance(
        instance_id="2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11", execution_id="aae324dcc8f943e490b37ec5e5bbf9da"
    )
    event = ExecutionStartedEvent(
        orchestration_instance=instance,
        name="OrchestrationName",
        version="2.0",
        input="input",
        tags={"tag1": "tagValue"},
        generation=0,
        timestamp=datetime(2023, 3, 24, 20, 53, 5, 909351, tzinfo=timezone.utc),
    )
    md = MessageData(
        activity_id=ACTIVITY,
        task_message=TaskMessage(event=event, orchestration_instance=instance),
        sequence_number=40,
        sender=OrchestrationInstance(instance_id="", execution_id=""),
    )
    oi = (
        '{"$type":"DurableTask.Core.OrchestrationInstance","InstanceId":"2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11",'
        '"ExecutionId":"aae324dcc8f943e490b37ec5e5bbf9da"}'
    )
    expected = (
        '{"$type":"DurableTask.AzureStorage.MessageData","ActivityId":"5406d369-4369-4673-afae-6671a2fa1e57",'
        '"TaskMessage":{"$type":"DurableTask.Core.TaskMessage","Event":{"$type":"DurableTask.Core.History.'
        f'ExecutionStartedEvent","OrchestrationInstance":{oi},"EventType":0,"ParentInstance":null,'
        '"Name":"OrchestrationName","Version":"2.0","Input":"input","Tags":{"$type":"' + CORE_DICT_STRING_STRING + '",'
        '"tag1":"tagValue"},"Correlation":null,"ParentTraceContext":null,"ScheduledStartTime":null,"Generation":0,'
        '"GenerateNewTrace":false,"EventId":-1,"IsPlayed":false,"Timestamp":"2023-03-24T20:53:05.909351Z"},'
        f'"SequenceNumber":0,"OrchestrationInstance":{oi},"OrchestrationExecutionContext":null}},'
        '"CompressedBlobName":null,"SequenceNumber":40,"Sender":{"InstanceId":"","ExecutionId":""},'
        '"SerializableTraceContext":null}'
    )
    assert encode_message_data(md) == expected


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_type_is_first_key_of_every_object_except_sender(cls: type[HistoryEvent]) -> None:
    md = envelope(full_event(cls), episode=4, sender=INSTANCE)
    md.task_message.orchestration_execution_context = OrchestrationExecutionContext(orchestration_tags={"a": "b"})  # type: ignore[union-attr]
    objects = objects_with_path(pairs_tree(encode_message_data(md)))
    assert len(objects) > 3
    for path, members in objects:
        if path == "$.Sender":
            assert [k for k, _ in members] == ["InstanceId", "ExecutionId"]
        else:
            assert members[0][0] == "$type", path


def test_nested_type_names() -> None:
    md = envelope(TaskFailedEvent(task_scheduled_id=1, failure_details=FAILURE, timestamp=T0))
    tree = json.loads(encode_message_data(md))
    fd = tree["TaskMessage"]["Event"]["FailureDetails"]
    assert fd["$type"] == "DurableTask.Core.FailureDetails"
    assert list(fd) == [
        "$type",
        "ErrorType",
        "ErrorMessage",
        "StackTrace",
        "InnerFailure",
        "IsNonRetriable",
        "Properties",
    ]
    assert fd["InnerFailure"]["$type"] == "DurableTask.Core.FailureDetails"
    assert fd["Properties"]["$type"] == CORE_DICT_STRING_OBJECT
    assert fd["Properties"]["nested"]["$type"] == CORE_DICT_STRING_OBJECT
    started = json.loads(encode_message_data(envelope(full_event(ExecutionStartedEvent))))["TaskMessage"]["Event"]
    assert started["ParentTraceContext"]["$type"] == "DurableTask.Core.Tracing.DistributedTraceContext"
    assert started["ParentTraceContext"]["ActivityStartTime"] == "2024-03-14T16:00:05.128542+00:00"
    assert started["ParentInstance"]["$type"] == "DurableTask.Core.ParentInstance"
    assert list(started["ParentInstance"]) == ["$type", "Name", "OrchestrationInstance", "TaskScheduleId", "Version"]


def test_enums_are_integers_and_optional_members_omitted() -> None:
    md = envelope(ExecutionCompletedEvent(result="r", timestamp=T0))
    tree = json.loads(encode_message_data(md))
    assert tree["TaskMessage"]["Event"]["EventType"] == 1
    assert tree["TaskMessage"]["Event"]["OrchestrationStatus"] == 1
    assert "Episode" not in tree and "Sender" not in tree
    assert tree["CompressedBlobName"] is None and tree["SerializableTraceContext"] is None


def test_history_state_carries_orchestration_state_type() -> None:
    from durable_azstorage.model import HistoryStateEvent

    tree = json.loads(encode_message_data(envelope(full_event(HistoryStateEvent))))
    assert tree["TaskMessage"]["Event"]["State"]["$type"] == "DurableTask.Core.OrchestrationState"
    assert TYPE_NAMES[MessageData] == "DurableTask.AzureStorage.MessageData"


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_round_trip_every_event_type(cls: type[HistoryEvent]) -> None:
    for event in (full_event(cls), empty_event(cls)):
        md = envelope(event, episode=2, sender=INSTANCE, serializable_trace_context="ctx", sequence_number=2**40)
        assert decode_message_data(encode_message_data(md)) == md


@settings(max_examples=300, deadline=None)
@given(
    event=any_event,
    episode=st.none() | st.integers(-1, 1000),
    sender=st.none() | st.builds(OrchestrationInstance, instance_id=st.text(), execution_id=st.none() | st.text()),
    tags=st.none() | st.dictionaries(st.text().filter(lambda k: not k.startswith("$")), st.text(), max_size=3),
)
def test_round_trip_property(
    event: HistoryEvent, episode: int | None, sender: OrchestrationInstance | None, tags: dict[str, str] | None
) -> None:
    md = envelope(event, episode=episode, sender=sender, activity_id=uuid.uuid4())
    md.task_message.orchestration_execution_context = (  # type: ignore[union-attr]
        None if tags is None else OrchestrationExecutionContext(orchestration_tags=tags)
    )
    assert decode_message_data(encode_message_data(md)) == md


# --------------------------------------------------------------------------- reader tolerance


def test_base64_bodies_are_accepted() -> None:
    md = envelope(OrchestratorStartedEvent(timestamp=T0))
    text = encode_message_data(md)
    b64 = base64.b64encode(text.encode()).decode()
    assert decode_message_data(b64) == md
    assert decode_message_data(b64.encode()) == md
    assert decode_message_data(b64[:20] + "\n" + b64[20:]) == md
    assert decode_message_data(base64.b64encode(b"\xef\xbb\xbf" + text.encode()).decode()) == md


def test_bom_whitespace_and_bytes_are_accepted() -> None:
    md = envelope(OrchestratorStartedEvent(timestamp=T0))
    text = encode_message_data(md)
    assert decode_message_data("\ufeff  " + text + "\r\n\r\n") == md
    assert decode_message_data(b"\xef\xbb\xbf" + text.encode()) == md


def test_unknown_members_are_ignored_and_missing_ones_defaulted() -> None:
    body = json.dumps(
        {
            "$type": "DurableTask.AzureStorage.MessageData",
            "Future": {"$type": "Whatever.Not.Whitelisted"},
            "TaskMessage": {
                "Event": {"EventType": 12, "Timestamp": "2024-01-01T00:00:00Z", "Extra": 1},
                "OrchestrationInstance": {"InstanceId": "x"},
                "NewThing": [1, 2],
            },
        }
    )
    md = decode_message_data(body)
    assert md.activity_id == uuid.UUID(int=0) and md.sequence_number == 0
    assert md.task_message is not None and isinstance(md.task_message.event, OrchestratorStartedEvent)
    assert md.task_message.event.event_id == -1
    assert md.task_message.orchestration_instance == OrchestrationInstance(instance_id="x")
    assert md.task_message.extra == {"NewThing": [1, 2]}


def _mutated(path: list[str], value: Any) -> str:
    tree = json.loads(encode_message_data(envelope(full_event(ExecutionStartedEvent), sender=INSTANCE)))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(tree)


@pytest.mark.parametrize(
    "path",
    [
        ["$type"],
        ["TaskMessage", "$type"],
        ["TaskMessage", "Event", "$type"],
        ["TaskMessage", "Event", "OrchestrationInstance", "$type"],
        ["TaskMessage", "Event", "Tags", "$type"],
        ["TaskMessage", "Event", "ParentInstance", "$type"],
        ["TaskMessage", "Event", "ParentTraceContext", "$type"],
    ],
)
def test_unknown_type_anywhere_is_refused(path: list[str]) -> None:
    with pytest.raises(UnknownTypeNameError):
        decode_message_data(_mutated(path, "System.Diagnostics.Process, System"))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["ActivityId"], "not-a-guid"),
        (["SequenceNumber"], "x"),
        (["Episode"], 1.5),
        (["TaskMessage"], 5),
        (["TaskMessage", "Event"], None),
        (["TaskMessage", "Event"], []),
        (["TaskMessage", "Event", "EventId"], "abc"),
        (["TaskMessage", "Event", "EventId"], None),
        (["TaskMessage", "Event", "IsPlayed"], "yes"),
        (["TaskMessage", "Event", "Timestamp"], "yesterday"),
        (["TaskMessage", "Event", "Name"], {"a": 1}),
        (["TaskMessage", "Event", "Tags"], {"k": 1}),
        (["TaskMessage", "Event", "Generation"], 2**40),
        (["TaskMessage", "Event", "$type"], "DurableTask.Core.TaskMessage"),
        (["TaskMessage", "Event", "OrchestrationInstance"], {"ExecutionId": "e"}),
        (["TaskMessage", "Event", "OrchestrationInstance", "$type"], "DurableTask.Core.ParentInstance"),
        (["TaskMessage", "OrchestrationInstance"], None),
        (["Sender"], "x"),
    ],
)
def test_wrong_shapes_raise_message_decode_error(path: list[str], value: Any) -> None:
    with pytest.raises(MessageDecodeError):
        decode_message_data(_mutated(path, value))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "not json at all!",
        "{",
        "{]",
        "[]",
        "null",
        b"\xff\xfe\x00",
        base64.b64encode(b"[1,2]").decode(),
        base64.b64encode(b"\xff\xff").decode(),
        '{"$type":"DurableTask.AzureStorage.MessageData","TaskMessage":{"Event":{"EventType":99},'
        '"OrchestrationInstance":{"InstanceId":"x"}}}',
        '{"$type":"DurableTask.AzureStorage.MessageData","TaskMessage":{"Event":{"EventType":1,'
        '"OrchestrationStatus":42},"OrchestrationInstance":{"InstanceId":"x"}}}',
        '{"TaskMessage":{"Event":{"Name":"no type"},"OrchestrationInstance":{"InstanceId":"x"}}}',
        '{"$type":5}',
        '{"$ref":"1"}',
        "[" * 100000,
    ],
)
def test_garbage_raises_message_decode_error(body: str | bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode_message_data(body)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["$type", "TaskMessage", "Event", "EventType", "OrchestrationInstance", "InstanceId", "x"]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_fuzzed_json_only_ever_raises_message_decode_error(tree: Any) -> None:
    try:
        decode_message_data(json.dumps(tree))
    except MessageDecodeError:
        pass


def test_event_type_decides_class_when_type_is_absent() -> None:
    ev = history_event_from_tree(
        {"EventType": 5, "TaskScheduledId": 3, "Result": "r", "Timestamp": "2024-01-01T00:00:00Z"}
    )
    assert ev.event_type is EventType.TaskCompleted


# --------------------------------------------------------------------------- large messages


def _message_of_utf8_size(size: int) -> MessageData:
    base = envelope(TaskScheduledEvent(name="a", input="", timestamp=T0))
    filler = size - len(encode_message_data(base).encode())
    md = envelope(TaskScheduledEvent(name="a", input="x" * filler, timestamp=T0))
    assert len(encode_message_data(md).encode()) == size
    return md


def test_queue_threshold_46080_inline_46081_blob() -> None:
    assert MAX_QUEUE_PAYLOAD_BYTES == 46080
    inline = _message_of_utf8_size(46080)
    text, blob = prepare_queue_message(inline)
    assert not needs_blob(text) and blob is None and text == encode_message_data(inline)

    large = _message_of_utf8_size(46081)
    assert needs_blob(encode_message_data(large))
    text, blob = prepare_queue_message(large)
    assert blob is not None
    blob_name, content = blob
    assert blob_name == f"inst/1/message-{ACTIVITY.hex}-TaskScheduled.json.gz"
    assert text == large_message_wrapper(blob_name)
    wrapper = decode_message_data(text)
    assert wrapper.task_message is None and wrapper.compressed_blob_name == blob_name
    inner = gunzip_text(content)
    assert json.loads(inner)["CompressedBlobName"] is None
    assert decode_message_data(inner) == large


def test_threshold_counts_utf8_bytes_not_characters() -> None:
    assert needs_blob("é" * 23041) and not needs_blob("é" * 23040)


def test_large_message_names_and_wrapper() -> None:
    assert (
        large_message_blob_name("a/b", uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e"), EventType.ExecutionStarted)
        == "a/b/message-0f8fad5bd9cb469fa16570867728950e-ExecutionStarted.json.gz"
    )
    assert large_message_wrapper("abc/x.json.gz") == (
        '{"$type":"DurableTask.AzureStorage.MessageData","ActivityId":"00000000-0000-0000-0000-000000000000",'
        '"TaskMessage":null,"CompressedBlobName":"abc/x.json.gz","SequenceNumber":0,"SerializableTraceContext":null}'
    )


def test_gzip_round_trip_and_garbage() -> None:
    data = gzip_text("héllo")
    assert data[:2] == b"\x1f\x8b" and gunzip_text(data) == "héllo"
    assert gzip_text("x") == gzip_text("x")
    with pytest.raises(MessageDecodeError):
        gunzip_text(b"not gzip")


def test_deeply_nested_failure_chain_is_a_decode_error() -> None:
    depth = 600
    inner = "null"
    for _ in range(depth):
        inner = '{"ErrorType":"e","ErrorMessage":"m","InnerFailure":' + inner + "}"
    body = (
        '{"TaskMessage":{"Event":{"EventType":6,"FailureDetails":'
        + inner
        + '},"OrchestrationInstance":{"InstanceId":"x"}}}'
    )
    try:
        decode_message_data(body)
    except MessageDecodeError:
        pass
    body = body.replace(inner, "[" * 5000 + "]" * 5000)
    with pytest.raises(MessageDecodeError):
        decode_message_data(body)
