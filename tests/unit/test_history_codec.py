from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty
from azure.data.tables._deserialize import TablesEntityDatetime, _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties
from hypothesis import given, settings

from durable_azstorage.codec.history_codec import (
    entity_to_history_event,
    history_event_to_entity,
    history_property_blob_name,
    sentinel_entity,
)
from durable_azstorage.codec.table_columns import (
    BLOB_NAME_SUFFIX,
    LARGE_PROPERTY_CANDIDATES,
    MAX_TABLE_PROPERTY_UTF16_BYTES,
    blob_name_property,
    estimate_entity_size,
    oversized_properties,
)
from durable_azstorage.errors import MessageDecodeError
from durable_azstorage.model import (
    ContinueAsNewEvent,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    GenericEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerFiredEvent,
)

from .codec_samples import ALL_CLASSES, FAILURE, T0, any_event, empty_event, full_event

S, I32, B, D = "Edm.String", "Edm.Int32", "Edm.Boolean", "Edm.DateTime"
COMMON = {
    "PartitionKey": S,
    "RowKey": S,
    "ExecutionId": S,
    "EventType": S,
    "EventId": I32,
    "IsPlayed": B,
    "_Timestamp": D,
}
_COMPLETED = {"OrchestrationStatus": S, "Result": S, "FailureDetails": S}
_FAILED = {"TaskScheduledId": I32, "Reason": S, "Details": S, "FailureDetails": S}

# DTAS ``TableEntityConverter`` columns per event type, written out independently of the codec's own member table.
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "ExecutionStartedEvent": {
        "OrchestrationInstance": S,
        "ParentInstance": S,
        "Name": S,
        "Version": S,
        "Input": S,
        "Tags": S,
        "Correlation": S,
        "ParentTraceContext": S,
        "ScheduledStartTime": D,
        "Generation": I32,
        "GenerateNewTrace": B,
    },
    "ExecutionCompletedEvent": _COMPLETED,
    "ExecutionFailedEvent": {},
    "ExecutionTerminatedEvent": {"Input": S},
    "TaskScheduledEvent": {"Name": S, "Version": S, "Input": S, "ParentTraceContext": S, "Tags": S},
    "TaskCompletedEvent": {"TaskScheduledId": I32, "Result": S},
    "TaskFailedEvent": _FAILED,
    "SubOrchestrationInstanceCreatedEvent": {
        "Name": S,
        "Version": S,
        "InstanceId": S,
        "Input": S,
        "ClientSpanId": S,
        "Tags": S,
    },
    "SubOrchestrationInstanceCompletedEvent": {"TaskScheduledId": I32, "Result": S},
    "SubOrchestrationInstanceFailedEvent": _FAILED,
    "TimerCreatedEvent": {"FireAt": D},
    "TimerFiredEvent": {"TimerId": I32, "FireAt": D},
    "OrchestratorStartedEvent": {},
    "OrchestratorCompletedEvent": {},
    "EventSentEvent": {"InstanceId": S, "Name": S, "Input": S},
    "EventRaisedEvent": {"Name": S, "Input": S, "ParentTraceContext": S},
    "ContinueAsNewEvent": _COMPLETED,
    "GenericEvent": {"Data": S},
    "HistoryStateEvent": {"State": S},
    "ExecutionSuspendedEvent": {"Reason": S},
    "ExecutionResumedEvent": {"Reason": S},
    "ExecutionRewoundEvent": {"Reason": S, "ParentExecutionId": S, "InstanceId": S, "ParentTraceContext": S},
}
COMPLEX_COLUMNS = {"OrchestrationInstance", "ParentInstance", "Tags", "ParentTraceContext", "FailureDetails", "State"}


def edm_types(entity: dict[str, Any]) -> dict[str, str]:
    """The Edm type azure-data-tables sends for each column (untyped JSON ints are Int32)."""
    wire = _add_entity_properties(entity)
    types: dict[str, str] = {}
    for name, value in entity.items():
        annotated = wire.get(f"{name}@odata.type")
        if annotated:
            types[name] = annotated
        elif isinstance(value, bool):
            types[name] = B
        elif isinstance(value, int):
            types[name] = I32
        else:
            raise AssertionError(f"{name}: unexpected untyped value {value!r}")
    return types


def as_read_back(entity: dict[str, Any]) -> dict[str, Any]:
    """What azure-data-tables returns after a write of ``entity`` (TablesEntityDatetime etc.)."""
    return dict(_convert_to_entity(_add_entity_properties(entity)))


def row(event: HistoryEvent, seq: int = 10) -> dict[str, Any]:
    return history_event_to_entity(event, instance_id="a/b#c", sequence_number=seq, execution_id="exec1")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_columns_and_edm_types_of_a_full_row(cls: type[HistoryEvent]) -> None:
    entity = row(full_event(cls))
    assert edm_types(entity) == {**COMMON, **EXPECTED_COLUMNS[cls.__name__]}
    assert entity["PartitionKey"] == "a^0b^2c" and entity["RowKey"] == "000000000000000A"
    assert entity["EventType"] == cls.EVENT_TYPE.name and entity["ExecutionId"] == "exec1"


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_null_complex_is_the_string_null_and_null_scalars_are_absent(cls: type[HistoryEvent]) -> None:
    entity = row(empty_event(cls))
    for column in EXPECTED_COLUMNS[cls.__name__]:
        if column in COMPLEX_COLUMNS:
            assert entity[column] == "null", column
        elif column in (
            "Name",
            "Version",
            "Input",
            "Correlation",
            "ScheduledStartTime",
            "Generation",
            "Result",
            "Reason",
            "Details",
            "InstanceId",
            "ClientSpanId",
            "Data",
            "ParentExecutionId",
        ):
            assert column not in entity, column
        else:  # non-nullable value types are always written
            assert column in entity, column


def test_complex_columns_are_default_json_without_type() -> None:
    entity = row(full_event(ExecutionStartedEvent))
    assert entity["OrchestrationInstance"] == '{"InstanceId":"inst/1","ExecutionId":"aae324dcc8f943e490b37ec5e5bbf9da"}'
    assert entity["ParentInstance"] == (
        '{"Name":"Parent","OrchestrationInstance":{"InstanceId":"p","ExecutionId":"e"},"TaskScheduleId":3,"Version":null}'
    )
    assert entity["Tags"] == '{"tag1":"tagValue"}'
    assert json.loads(entity["ParentTraceContext"])["ActivityStartTime"] == "2024-03-14T16:00:05.128542+00:00"
    failed = row(TaskFailedEvent(task_scheduled_id=4, failure_details=FAILURE, timestamp=T0))
    assert "$type" not in failed["FailureDetails"]
    assert json.loads(failed["FailureDetails"]) == {
        "ErrorType": "System.InvalidOperationException",
        "ErrorMessage": "boom",
        "StackTrace": "at X",
        "InnerFailure": {
            "ErrorType": "Inner",
            "ErrorMessage": "inner",
            "StackTrace": None,
            "InnerFailure": None,
            "IsNonRetriable": False,
            "Properties": None,
        },
        "IsNonRetriable": False,
        "Properties": {"k": 1, "nested": {"a": [1, "b"]}},
    }


def test_enums_are_names_and_timestamp_is_renamed() -> None:
    entity = row(ExecutionCompletedEvent(orchestration_status=OrchestrationStatus.Failed, timestamp=T0))
    assert entity["EventType"] == "ExecutionCompleted" and entity["OrchestrationStatus"] == "Failed"
    assert entity["_Timestamp"] == T0 and "Timestamp" not in entity
    can = row(ContinueAsNewEvent(result="x", timestamp=T0))
    assert can["EventType"] == "ContinueAsNew" and can["OrchestrationStatus"] == "ContinuedAsNew"


@pytest.mark.parametrize(
    ("seq", "key"),
    [(0, "0000000000000000"), (10, "000000000000000A"), (255, "00000000000000FF"), (4096, "0000000000001000")],
)
def test_row_keys_are_x16(seq: int, key: str) -> None:
    assert row(GenericEvent(timestamp=T0), seq)["RowKey"] == key
    assert key < "sentinel"


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_round_trip_through_azure_tables_wire_format(cls: type[HistoryEvent]) -> None:
    for event in (full_event(cls), empty_event(cls)):
        assert entity_to_history_event(row(event)) == event
        assert entity_to_history_event(as_read_back(row(event))) == event


@settings(max_examples=300, deadline=None)
@given(any_event)
def test_round_trip_property(event: HistoryEvent) -> None:
    assert entity_to_history_event(as_read_back(row(event))) == event


def test_reader_tolerates_sdk_values_absent_columns_and_unknown_columns() -> None:
    when = TablesEntityDatetime(2024, 3, 14, 16, 0, 5, 128542, tzinfo=timezone.utc)
    entity = {
        "PartitionKey": "p",
        "RowKey": "0000000000000001",
        "EventType": "TimerFired",
        "TimerId": EntityProperty(3, EdmType.INT64),
        "FireAt": "2024-03-14T19:00:05.0563363Z",
        "_Timestamp": when,
        "Timestamp": datetime(2030, 1, 1, tzinfo=timezone.utc),
        "SomethingNew": "ignored",
        "InputBlobName": "ignored",
    }
    ev = entity_to_history_event(entity)
    assert ev == TimerFiredEvent(
        timer_id=3,
        fire_at=datetime(2024, 3, 14, 19, 0, 5, 56336, tzinfo=timezone.utc),
        timestamp=when,
        event_id=0,  # absent non-nullable column -> default(int), as TableEntityConverter
    )
    assert type(ev.timestamp) is datetime


def test_reader_applies_dotnet_defaults_for_absent_columns() -> None:
    ev = entity_to_history_event({"EventType": "ExecutionCompleted"})
    assert isinstance(ev, ExecutionCompletedEvent)
    assert ev.orchestration_status is OrchestrationStatus.Running and ev.result is None and ev.event_id == 0
    assert ev.timestamp == datetime(1, 1, 1, tzinfo=timezone.utc)
    started = entity_to_history_event({"EventType": "ExecutionStarted", "Tags": "null", "ParentInstance": "null"})
    assert isinstance(started, ExecutionStartedEvent)
    assert started.tags is None and started.parent_instance is None and started.generation is None


def test_reader_parses_json_columns() -> None:
    ev = entity_to_history_event(
        {
            "EventType": "ExecutionStarted",
            "OrchestrationInstance": '{"InstanceId":"i","ExecutionId":null}',
            "Tags": '{"a":"b"}',
        }
    )
    assert isinstance(ev, ExecutionStartedEvent)
    assert ev.orchestration_instance == OrchestrationInstance(instance_id="i") and ev.tags == {"a": "b"}


@pytest.mark.parametrize(
    "entity",
    [
        {},
        {"EventType": "NoSuchEvent"},
        {"EventType": 4},
        {"EventType": "TaskCompleted", "TaskScheduledId": "abc"},
        {"EventType": "TaskCompleted", "TaskScheduledId": True},
        {"EventType": "TaskCompleted", "Result": 5},
        {"EventType": "TaskCompleted", "IsPlayed": "yes"},
        {"EventType": "TaskCompleted", "_Timestamp": "yesterday"},
        {"EventType": "TaskCompleted", "_Timestamp": 5},
        {"EventType": "TaskFailed", "FailureDetails": "{not json"},
        {"EventType": "TaskFailed", "FailureDetails": "[1]"},
        {"EventType": "TaskScheduled", "Tags": '{"a":1}'},
        {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Exploded"},
        {"EventType": "ExecutionStarted", "OrchestrationInstance": '{"$type":"System.Object"}'},
    ],
)
def test_malformed_rows_raise_message_decode_error(entity: dict[str, Any]) -> None:
    with pytest.raises(MessageDecodeError):
        entity_to_history_event(entity)


def test_int32_overflow_is_refused_on_write() -> None:
    with pytest.raises(ValueError):
        row(TaskCompletedEvent(task_scheduled_id=2**31, timestamp=T0))


def test_sentinel_entity() -> None:
    assert sentinel_entity("a/b", "e1", checkpoint_complete=False, completed_at=None) == {
        "PartitionKey": "a^0b",
        "RowKey": "sentinel",
        "ExecutionId": "e1",
        "IsCheckpointComplete": False,
    }
    done = sentinel_entity("a", "e1", checkpoint_complete=True, completed_at=T0)
    assert done["CheckpointCompletedTimestamp"] == T0
    assert edm_types(done)["CheckpointCompletedTimestamp"] == D and edm_types(done)["IsCheckpointComplete"] == B


# --------------------------------------------------------------------------- large properties


def test_threshold_30720_bmp_chars_inline_30721_blob() -> None:
    assert MAX_TABLE_PROPERTY_UTF16_BYTES == 61440
    inline = row(TaskScheduledEvent(name="n", input="é" * 30720, timestamp=T0))
    assert oversized_properties(inline) == []
    large = row(TaskScheduledEvent(name="n", input="é" * 30721, timestamp=T0))
    assert oversized_properties(large) == ["Input"]
    # astral characters are two UTF-16 code units: 15361 of them exceed the limit
    assert oversized_properties({"Result": "\U0001f600" * 15360}) == []
    assert oversized_properties({"Result": "\U0001f600" * 15361}) == ["Result"]


def test_only_candidate_string_columns_are_offloaded() -> None:
    big = "x" * 40000
    entity = {name: big for name in LARGE_PROPERTY_CANDIDATES} | {"Data": big, "InstanceId": big}
    assert oversized_properties(entity) == list(LARGE_PROPERTY_CANDIDATES)


def test_blob_names() -> None:
    assert BLOB_NAME_SUFFIX == "BlobName" and blob_name_property("Input") == "InputBlobName"
    assert (
        history_property_blob_name("a^0b", "000000000000000A", "TaskScheduled", "Input", 0x0A1B2C3D)
        == "a^0b/history-000000000000000A-TaskScheduled-0A1B2C3D-Input.json.gz"
    )
    assert history_property_blob_name("p", "", "Input", "Input", 5) == "p/history--Input-00000005-Input.json.gz"
    for _ in range(50):
        name = history_property_blob_name("p", "0000000000000001", "TaskCompleted", "Result")
        r = int(name.split("-")[-2], 16)
        assert 0 <= r < 2**31 and len(name.split("-")[-2]) == 8


def test_estimate_entity_size() -> None:
    assert estimate_entity_size({"PartitionKey": "x" * 500, "EventId": 1}) == 1024
    assert estimate_entity_size({"Input": "abc", "Name": "", "Result": "é", "Data": "ignored"}) == 1024 + 6 + 2
