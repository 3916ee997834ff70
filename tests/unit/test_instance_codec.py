from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties

from durable_azstorage.codec.instance_codec import (
    blob_url,
    instance_entity_for_create,
    instance_entity_to_state,
    instance_update_for_checkpoint,
    is_blob_url,
)
from durable_azstorage.errors import MessageDecodeError
from durable_azstorage.model import (
    ContinueAsNewEvent,
    ExecutionCompletedEvent,
    ExecutionResumedEvent,
    ExecutionStartedEvent,
    ExecutionSuspendedEvent,
    ExecutionTerminatedEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    TaskScheduledEvent,
)

from .codec_samples import FAILURE, T0

NOW = T0 + timedelta(minutes=5)


def started(**kw: Any) -> ExecutionStartedEvent:
    return ExecutionStartedEvent(
        orchestration_instance=OrchestrationInstance(instance_id="inst/1", execution_id="e1"),
        name="Hello",
        version="",
        input='"world"',
        generation=0,
        timestamp=T0,
        **kw,
    )


def checkpoint(events: list[Any], custom_status: str | None = None, **kw: Any) -> dict[str, Any]:
    return instance_update_for_checkpoint(
        events,
        instance_id="inst/1",
        execution_id="e1",
        custom_status=custom_status,
        task_hub_name="MyHub",
        now=NOW,
        **kw,
    )


def test_client_create_row_section_9_item_15() -> None:
    entity = instance_entity_for_create(started(tags={"a": "b"}), "MyHub", now=NOW)
    assert entity == {
        "PartitionKey": "inst^01",
        "RowKey": "",
        "Input": '"world"',
        "CreatedTime": T0,
        "Name": "Hello",
        "Version": "",
        "RuntimeStatus": "Pending",
        "LastUpdatedTime": NOW,
        "TaskHubName": "MyHub",
        "ExecutionId": "e1",
        "Generation": 0,
        "Tags": '{"a":"b"}',
    }
    wire = _add_entity_properties(entity)
    assert isinstance(wire["Generation"], int) and "Generation@odata.type" not in wire  # Int32
    assert wire["CreatedTime@odata.type"] == "Edm.DateTime"


def test_client_create_optional_columns() -> None:
    scheduled = T0 + timedelta(hours=1)
    entity = instance_entity_for_create(
        started(scheduled_start_time=scheduled), "MyHub", now=NOW, input_override="https://a/b"
    )
    assert entity["Tags"] == "null" and entity["ScheduledStartTime"] == scheduled and entity["Input"] == "https://a/b"
    assert "CustomStatus" not in entity
    with pytest.raises(ValueError):
        instance_entity_for_create(ExecutionStartedEvent(timestamp=T0), "MyHub")


def test_first_checkpoint_is_running_with_null_custom_status() -> None:
    events = [
        OrchestratorStartedEvent(timestamp=T0),
        started(),
        TaskScheduledEvent(event_id=0, timestamp=T0),
        OrchestratorCompletedEvent(timestamp=T0 + timedelta(seconds=1)),
    ]
    entity = checkpoint(events)
    assert entity == {
        "PartitionKey": "inst^01",
        "RowKey": "",
        "CustomStatus": "null",
        "ExecutionId": "e1",
        "LastUpdatedTime": T0 + timedelta(seconds=1),
        "TaskHubName": "MyHub",
        "Name": "Hello",
        "Version": "",
        "CreatedTime": T0,
        "RuntimeStatus": "Running",
        "Tags": "null",
        "Generation": 0,
        "Input": '"world"',
    }


def test_checkpoint_without_status_events_leaves_status_alone() -> None:
    entity = checkpoint([OrchestratorStartedEvent(timestamp=T0)], custom_status='"busy"')
    assert "RuntimeStatus" not in entity and entity["CustomStatus"] == '"busy"'
    with pytest.raises(ValueError):
        checkpoint([])


@pytest.mark.parametrize(
    ("event", "status", "output", "completed"),
    [
        (ExecutionCompletedEvent(result='"done"', timestamp=T0), "Completed", '"done"', True),
        (
            ExecutionCompletedEvent(
                orchestration_status=OrchestrationStatus.Failed, result="ignored", failure_details=FAILURE, timestamp=T0
            ),
            "Failed",
            "System.InvalidOperationException: boom",
            True,
        ),
        (
            ExecutionCompletedEvent(orchestration_status=OrchestrationStatus.Failed, result="r", timestamp=T0),
            "Failed",
            "r",
            True,
        ),
        (ExecutionTerminatedEvent(input='"stop"', timestamp=T0), "Terminated", '"stop"', True),
        (ExecutionSuspendedEvent(reason="pause", timestamp=T0), "Suspended", "pause", False),
        (ExecutionResumedEvent(reason="go", timestamp=T0), "Running", "go", False),
        (ContinueAsNewEvent(result="next", timestamp=T0), "ContinuedAsNew", "next", False),
    ],
)
def test_status_changing_events(event: Any, status: str, output: str, completed: bool) -> None:
    entity = checkpoint([OrchestratorStartedEvent(timestamp=T0), event])
    assert entity["RuntimeStatus"] == status and entity["Output"] == output
    assert ("CompletedTime" in entity) is completed
    if completed:
        assert entity["CompletedTime"] == NOW


def test_checkpoint_points_at_offloaded_blobs_like_dtas() -> None:
    events = [started(), ExecutionCompletedEvent(result="x" * 10, timestamp=T0)]
    rows = [
        {"InputBlobName": "inst^01/history-0000000000000000-ExecutionStarted-00000001-Input.json.gz"},
        {"ResultBlobName": "inst^01/history-0000000000000001-ExecutionCompleted-00000002-Result.json.gz"},
    ]
    entity = checkpoint(
        events, history_entities=rows, blob_url_for=lambda n: blob_url("https://acct/c-largemessages", n)
    )
    assert entity["Input"] == (
        "https://acct/c-largemessages/inst%5E01/history-0000000000000000-ExecutionStarted-00000001-Input.json.gz"
    )
    assert entity["Output"].endswith("/inst%5E01/history-0000000000000001-ExecutionCompleted-00000002-Result.json.gz")
    with pytest.raises(ValueError):
        checkpoint(events, history_entities=rows[:1])


def test_instance_row_reads_back() -> None:
    create = instance_entity_for_create(started(tags={"a": "b"}), "MyHub", now=NOW)
    merged = {**create, **checkpoint([started(), ExecutionCompletedEvent(result='"r"', timestamp=T0)])}
    state = instance_entity_to_state(dict(_convert_to_entity(_add_entity_properties(merged))))
    assert state.orchestration_instance == OrchestrationInstance(instance_id="inst/1", execution_id="e1")
    assert state.runtime_status is OrchestrationStatus.Completed
    assert (state.name, state.version, state.input, state.output) == ("Hello", "", '"world"', '"r"')
    assert state.custom_status is None and state.tags is None and state.generation == 0
    assert state.created_time == T0 and state.completed_time == NOW and state.task_hub_name == "MyHub"
    assert type(state.created_time) is datetime


def test_instance_reader_tolerance() -> None:
    state = instance_entity_to_state(
        {
            "PartitionKey": "x^0y",
            "RowKey": "",
            "RuntimeStatus": "Exploded",
            "CustomStatus": '"hi"',
            "Tags": '{"k":"v"}',
            "CreatedTime": "2023-03-24T20:53:05.9093518Z",
        }
    )
    assert state.instance_id == "x/y" and state.runtime_status is None
    assert state.custom_status == '"hi"' and state.tags == {"k": "v"}
    assert state.created_time == datetime(2023, 3, 24, 20, 53, 5, 909351, tzinfo=timezone.utc)
    assert (
        instance_entity_to_state({"PartitionKey": "p", "RuntimeStatus": "3"}).runtime_status
        is OrchestrationStatus.Failed
    )
    with pytest.raises(MessageDecodeError):
        instance_entity_to_state({"RowKey": ""})
    with pytest.raises(MessageDecodeError):
        instance_entity_to_state({"PartitionKey": "p", "Tags": "{oops"})
    with pytest.raises(MessageDecodeError):
        instance_entity_to_state({"PartitionKey": "p", "CreatedTime": 17})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "https://acct.blob.core.windows.net/myhub-largemessages/abc/history-01-ExecutionStarted-0A1B2C3D-Input.json.gz",
            True,
        ),
        ("http://127.0.0.1:10000/devstoreaccount1/hub-largemessages/a%5E0b/x.json.gz", True),
        ('"https://example.com"', False),
        ("https://exa mple.com/x", False),
        ("https://", False),
        ("/relative/path", False),
        ('{"a":1}', False),
        ("null", False),
        ("https://x/%zz", False),
    ],
)
def test_is_blob_url(value: str, expected: bool) -> None:
    assert is_blob_url(value) is expected


def test_blob_url_escapes_each_segment() -> None:
    assert blob_url("https://a/c/", "x y/é^z") == "https://a/c/x%20y/%C3%A9%5Ez"
