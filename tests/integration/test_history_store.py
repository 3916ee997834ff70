"""HistoryStore against a real Table service: DTAS row layout, sentinel ETags, batching, blobs."""

from __future__ import annotations

import gzip
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import escape_partition_key
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import CheckpointConflictError
from durable_azstorage.model import (
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    TaskCompletedEvent,
    TaskScheduledEvent,
)
from durable_azstorage.storage.blobs import LargePayloadStore
from durable_azstorage.storage.history_store import HistoryStore, OffloadedProperty

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@dataclass
class Env:
    store: HistoryStore
    table: TableClient
    payloads: LargePayloadStore


@pytest.fixture
async def env(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[Env]:
    names = TaskHubNames(task_hub_name)
    async with storage_account.table_service() as tables, storage_account.blob_service() as blobs:
        table = await tables.create_table(names.history_table)
        payloads = LargePayloadStore(blobs, names.large_messages_container)
        yield Env(HistoryStore(table, payloads), table, payloads)
        await tables.delete_table(names.history_table)


def new_execution_id() -> str:
    return uuid.uuid4().hex


def first_episode(instance_id: str, execution_id: str, *, task_input: str = '"x"') -> list[HistoryEvent]:
    return [
        OrchestratorStartedEvent(timestamp=NOW),
        ExecutionStartedEvent(
            timestamp=NOW,
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
            name="Hello",
            version="",
            input='"world"',
            generation=0,
        ),
        TaskScheduledEvent(event_id=0, timestamp=NOW, name="SayHello", version="", input=task_input),
        OrchestratorCompletedEvent(timestamp=NOW),
    ]


def second_episode() -> list[HistoryEvent]:
    return [
        OrchestratorStartedEvent(timestamp=NOW + timedelta(seconds=1)),
        TaskCompletedEvent(timestamp=NOW + timedelta(seconds=1), task_scheduled_id=0, result='"Hello world"'),
        OrchestratorCompletedEvent(timestamp=NOW + timedelta(seconds=1)),
    ]


async def rows(table: TableClient, instance_id: str) -> list[dict[str, Any]]:
    pk = escape_partition_key(instance_id)
    return [dict(e) async for e in table.query_entities(f"PartitionKey eq '{pk}'")]


async def test_first_checkpoint_inserts_sentinel_then_merges_with_etag(env: Env) -> None:
    instance_id, execution_id = "inst-1", new_execution_id()
    events = first_episode(instance_id, execution_id)
    etag1 = await env.store.checkpoint(
        instance_id, execution_id, all_event_count=4, new_events=events, etag=None, now=NOW
    )
    stored = await rows(env.table, instance_id)
    assert [r["RowKey"] for r in stored] == [f"{i:016X}" for i in range(4)] + ["sentinel"]
    sentinel = stored[-1]
    assert sentinel["ExecutionId"] == execution_id
    assert sentinel["IsCheckpointComplete"] is True
    assert sentinel["CheckpointCompletedTimestamp"] == NOW
    assert all(r["ExecutionId"] == execution_id for r in stored)
    assert stored[2]["EventType"] == "TaskScheduled"

    loaded = await env.store.load(instance_id)
    assert loaded.etag == etag1
    assert loaded.execution_id == execution_id
    assert [type(e) for e in loaded.events] == [type(e) for e in events]
    assert loaded.checkpoint_completed_at == NOW

    later = NOW + timedelta(minutes=1)
    etag2 = await env.store.checkpoint(
        instance_id, execution_id, all_event_count=7, new_events=second_episode(), etag=etag1, now=later
    )
    assert etag2 != etag1
    loaded = await env.store.load(instance_id)
    assert loaded.etag == etag2
    assert len(loaded.events) == 7
    completed = loaded.events[5]
    assert isinstance(completed, TaskCompletedEvent)
    assert completed.result == '"Hello world"'
    assert loaded.checkpoint_completed_at == later


async def test_stale_etag_raises_conflict_and_writes_nothing(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    instance_id, execution_id = "inst-stale", new_execution_id()
    etag1 = await env.store.checkpoint(
        instance_id,
        execution_id,
        all_event_count=4,
        new_events=first_episode(instance_id, execution_id),
        etag=None,
        now=NOW,
    )
    await env.store.checkpoint(
        instance_id, execution_id, all_event_count=7, new_events=second_episode(), etag=etag1, now=NOW
    )
    before = await rows(env.table, instance_id)
    with caplog.at_level(logging.WARNING), pytest.raises(CheckpointConflictError):
        await env.store.checkpoint(
            instance_id, execution_id, all_event_count=10, new_events=second_episode(), etag=etag1, now=NOW
        )
    assert "history.split_brain_detected" in caplog.text
    after = await rows(env.table, instance_id)
    assert [r["RowKey"] for r in after] == [r["RowKey"] for r in before]


async def test_concurrent_first_insert_raises_conflict(env: Env) -> None:
    instance_id = "inst-race"
    winner, loser = new_execution_id(), new_execution_id()
    await env.store.checkpoint(
        instance_id, winner, all_event_count=4, new_events=first_episode(instance_id, winner), etag=None, now=NOW
    )
    loser_events = first_episode(instance_id, loser) + second_episode()
    with pytest.raises(CheckpointConflictError):
        await env.store.checkpoint(instance_id, loser, all_event_count=7, new_events=loser_events, etag=None, now=NOW)
    stored = await rows(env.table, instance_id)
    assert len(stored) == 5
    assert {r["ExecutionId"] for r in stored} == {winner}


async def test_250_events_take_three_transactions(env: Env) -> None:
    instance_id, execution_id = "inst-many", new_execution_id()
    events: list[HistoryEvent] = first_episode(instance_id, execution_id)
    events += [TaskScheduledEvent(event_id=i, timestamp=NOW, name="Act", input=str(i)) for i in range(1, 247)]
    assert len(events) == 250
    transactions: list[list[tuple[Any, ...]]] = []
    original = env.table.submit_transaction

    async def spy(operations: Any, **kwargs: Any) -> Any:
        ops = list(operations)
        transactions.append(ops)
        return await original(ops, **kwargs)

    env.table.submit_transaction = spy  # type: ignore[method-assign]
    etag = await env.store.checkpoint(
        instance_id, execution_id, all_event_count=250, new_events=events, etag=None, now=NOW
    )
    assert [len(t) for t in transactions] == [100, 100, 53]
    sentinel_ops = [t[-1] for t in transactions]
    assert [op[0] for op in sentinel_ops] == ["create", "update", "update"]
    assert [op[1]["IsCheckpointComplete"] for op in sentinel_ops] == [False, False, True]
    assert "CheckpointCompletedTimestamp" not in sentinel_ops[0][1]
    assert all(op[1]["RowKey"] == "sentinel" for op in sentinel_ops)

    stored = await rows(env.table, instance_id)
    assert len(stored) == 251
    assert stored[-1]["IsCheckpointComplete"] is True
    loaded = await env.store.load(instance_id)
    assert len(loaded.events) == 250
    assert loaded.etag == etag


async def test_large_property_goes_to_blob_and_loads_back(env: Env) -> None:
    instance_id, execution_id = "big/one", new_execution_id()
    big = "x" * 30_721
    events = first_episode(instance_id, execution_id, task_input=big)
    offloaded: list[OffloadedProperty] = []
    await env.store.checkpoint(
        instance_id, execution_id, all_event_count=4, new_events=events, etag=None, now=NOW, offloaded=offloaded
    )
    stored = await rows(env.table, instance_id)
    row = stored[2]
    assert row["Input"] == ""
    blob_name = row["InputBlobName"]
    assert re.fullmatch(r"big\^0one/history-0000000000000002-TaskScheduled-[0-9A-F]{8}-Input\.json\.gz", blob_name)
    assert offloaded == [OffloadedProperty(2, "TaskScheduled", "Input", blob_name)]
    assert await env.payloads.download_text(blob_name) == big
    assert "InputBlobName" not in stored[1]  # the small orchestration input stays inline

    loaded = await env.store.load(instance_id)
    scheduled = loaded.events[2]
    assert isinstance(scheduled, TaskScheduledEvent)
    assert scheduled.input == big
    assert loaded.blob_names == [blob_name]


async def test_30720_chars_stay_inline(env: Env) -> None:
    instance_id, execution_id = "edge", new_execution_id()
    value = "y" * 30_720
    await env.store.checkpoint(
        instance_id,
        execution_id,
        all_event_count=4,
        new_events=first_episode(instance_id, execution_id, task_input=value),
        etag=None,
        now=NOW,
    )
    row = (await rows(env.table, instance_id))[2]
    assert row["Input"] == value
    assert "InputBlobName" not in row


async def test_continue_as_new_rewrite_loads_only_new_generation(env: Env) -> None:
    instance_id = "inst-can"
    old, new = new_execution_id(), new_execution_id()
    old_events = first_episode(instance_id, old, task_input="z" * 30_721) + second_episode()
    etag = await env.store.checkpoint(instance_id, old, all_event_count=7, new_events=old_events, etag=None, now=NOW)
    previous = await env.store.load(instance_id)
    assert len(previous.blob_names) == 1

    new_events = [
        OrchestratorStartedEvent(timestamp=NOW),
        ExecutionStartedEvent(
            timestamp=NOW,
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=new),
            name="Hello",
            input='"again"',
            generation=1,
        ),
        OrchestratorCompletedEvent(timestamp=NOW),
    ]
    await env.store.checkpoint(
        instance_id, new, all_event_count=3, new_events=new_events, etag=previous.etag or etag, now=NOW
    )
    stored = await rows(env.table, instance_id)
    assert [r["ExecutionId"] for r in stored[:7]] == [new] * 3 + [old] * 4  # old tail remains

    loaded = await env.store.load(instance_id)
    assert loaded.execution_id == new
    assert len(loaded.events) == 3
    started = loaded.events[1]
    assert isinstance(started, ExecutionStartedEvent)
    assert started.input == '"again"'

    assert await env.store.delete_blobs(previous.blob_names) == 1
    assert not [b async for b in env.payloads._container.list_blobs()]


async def test_expected_execution_id_mismatch_is_empty_with_etag(env: Env) -> None:
    instance_id, execution_id = "inst-exp", new_execution_id()
    etag = await env.store.checkpoint(
        instance_id,
        execution_id,
        all_event_count=4,
        new_events=first_episode(instance_id, execution_id),
        etag=None,
        now=NOW,
    )
    other = new_execution_id()
    mismatch = await env.store.load(instance_id, expected_execution_id=other)
    assert mismatch.events == []
    assert mismatch.etag == etag
    assert mismatch.execution_id == other

    match = await env.store.load(instance_id, expected_execution_id=execution_id)
    assert len(match.events) == 4
    assert match.etag == etag

    missing = await env.store.load("never-existed")
    assert missing.events == [] and missing.etag is None and missing.execution_id is None


async def test_rows_written_in_dotnet_shape_load(env: Env) -> None:
    """Rows exactly as DTAS 2.x writes them (TableEntityConverter + sentinel), id ``a/b#c``."""
    instance_id, execution_id = "a/b#c", "0123456789abcdef0123456789abcdef"
    pk = "a^0b^2c"
    assert escape_partition_key(instance_id) == pk
    big = "r" * 40_000
    blob_name = f"{pk}/history-0000000000000005-TaskCompleted-0A1B2C3D-Result.json.gz"
    await env.payloads.ensure_container()
    await env.payloads._container.upload_blob(blob_name, gzip.compress(big.encode()), overwrite=True)
    base = {"PartitionKey": pk, "ExecutionId": execution_id, "IsPlayed": False, "_Timestamp": NOW}
    dotnet_rows: list[dict[str, Any]] = [
        {**base, "RowKey": "0000000000000000", "EventType": "OrchestratorStarted", "EventId": -1},
        {
            **base,
            "RowKey": "0000000000000001",
            "EventType": "ExecutionStarted",
            "EventId": -1,
            "OrchestrationInstance": json.dumps({"InstanceId": instance_id, "ExecutionId": execution_id}),
            "ParentInstance": "null",
            "Name": "Hello",
            "Version": "",
            "Input": '"world"',
            "Tags": "null",
            "ParentTraceContext": "null",
            "Generation": 0,
            "GenerateNewTrace": False,
        },
        {
            **base,
            "RowKey": "0000000000000002",
            "EventType": "TaskScheduled",
            "EventId": 0,
            "Name": "SayHello",
            "Version": "",
            "Input": '"world"',
            "ParentTraceContext": "null",
            "Tags": "null",
        },
        {**base, "RowKey": "0000000000000003", "EventType": "OrchestratorCompleted", "EventId": -1},
        {**base, "RowKey": "0000000000000004", "EventType": "OrchestratorStarted", "EventId": -1, "IsPlayed": True},
        {
            **base,
            "RowKey": "0000000000000005",
            "EventType": "TaskCompleted",
            "EventId": -1,
            "TaskScheduledId": 0,
            "Result": "",
            "ResultBlobName": blob_name,
        },
        {**base, "RowKey": "0000000000000006", "EventType": "OrchestratorCompleted", "EventId": -1},
        {
            "PartitionKey": pk,
            "RowKey": "sentinel",
            "ExecutionId": execution_id,
            "IsCheckpointComplete": True,
            "CheckpointCompletedTimestamp": NOW,
        },
        # A leftover row of an older, longer generation must be ignored.
        {**base, "RowKey": "0000000000000007", "ExecutionId": "old", "EventType": "OrchestratorStarted"},
    ]
    for row in dotnet_rows:
        await env.table.upsert_entity(row)

    loaded = await env.store.load(instance_id)
    assert loaded.execution_id == execution_id
    assert [type(e).__name__ for e in loaded.events] == [
        "OrchestratorStartedEvent",
        "ExecutionStartedEvent",
        "TaskScheduledEvent",
        "OrchestratorCompletedEvent",
        "OrchestratorStartedEvent",
        "TaskCompletedEvent",
        "OrchestratorCompletedEvent",
    ]
    started = loaded.events[1]
    assert isinstance(started, ExecutionStartedEvent)
    assert started.orchestration_instance == OrchestrationInstance(instance_id=instance_id, execution_id=execution_id)
    assert started.name == "Hello" and started.input == '"world"' and started.parent_instance is None
    scheduled = loaded.events[2]
    assert isinstance(scheduled, TaskScheduledEvent) and scheduled.event_id == 0 and scheduled.name == "SayHello"
    completed = loaded.events[5]
    assert isinstance(completed, TaskCompletedEvent)
    assert completed.task_scheduled_id == 0 and completed.result == big
    assert loaded.events[4].is_played is True
    assert loaded.blob_names == [blob_name]
    assert loaded.checkpoint_completed_at == NOW

    # The next Python checkpoint continues the .NET history with the same layout.
    etag = await env.store.checkpoint(
        instance_id, execution_id, all_event_count=10, new_events=second_episode(), etag=loaded.etag, now=NOW
    )
    assert (await env.store.load(instance_id)).etag == etag
    assert len((await env.store.load(instance_id)).events) == 10


async def test_purge_deletes_every_row(env: Env) -> None:
    instance_id, execution_id = "inst-purge", new_execution_id()
    events: list[HistoryEvent] = first_episode(instance_id, execution_id)
    events += [TaskScheduledEvent(event_id=i, timestamp=NOW, name="Act") for i in range(1, 147)]
    await env.store.checkpoint(instance_id, execution_id, all_event_count=150, new_events=events, etag=None, now=NOW)
    other = "inst-keep"
    await env.store.checkpoint(
        other, execution_id, all_event_count=4, new_events=first_episode(other, execution_id), etag=None, now=NOW
    )
    assert await env.store.purge(instance_id) == 151
    assert await rows(env.table, instance_id) == []
    assert len(await rows(env.table, other)) == 5
    assert (await env.store.load(instance_id)).etag is None
    assert await env.store.purge(instance_id) == 0


async def test_purge_batch_falls_back_to_single_deletes_on_404(env: Env) -> None:
    instance_id, execution_id = "inst-404", new_execution_id()
    await env.store.checkpoint(
        instance_id,
        execution_id,
        all_event_count=4,
        new_events=first_episode(instance_id, execution_id),
        etag=None,
        now=NOW,
    )
    keys = [{"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]} for r in await rows(env.table, instance_id)]
    keys.append({"PartitionKey": keys[0]["PartitionKey"], "RowKey": "00000000000000FF"})  # already gone
    assert await env.store._delete_chunk(keys) == 5
    assert await rows(env.table, instance_id) == []


async def write_rows(table: TableClient, instance_id: str, execution_id: str, specs: list[dict[str, Any]]) -> None:
    pk = escape_partition_key(instance_id)
    for i, spec in enumerate(specs):
        row = {"PartitionKey": pk, "RowKey": f"{i:016X}", "ExecutionId": execution_id, "EventId": -1, **spec}
        await table.upsert_entity(row)
    await table.upsert_entity(
        {"PartitionKey": pk, "RowKey": "sentinel", "ExecutionId": execution_id, "IsCheckpointComplete": True}
    )


async def test_rewind_rewrites_failure_rows_and_recurses_into_children(env: Env) -> None:
    parent, child = "rw-parent", "rw-child"
    await write_rows(
        env.table,
        parent,
        "p1",
        [
            {"EventType": "OrchestratorStarted"},
            {"EventType": "ExecutionStarted", "Name": "Parent"},
            {"EventType": "SubOrchestrationInstanceCreated", "EventId": 0, "InstanceId": child, "Name": "Child"},
            {"EventType": "OrchestratorCompleted"},
            {"EventType": "OrchestratorStarted"},
            {"EventType": "SubOrchestrationInstanceFailed", "TaskScheduledId": 0, "Reason": "boom"},
            {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Failed"},
            {"EventType": "OrchestratorCompleted"},
        ],
    )
    await write_rows(
        env.table,
        child,
        "c1",
        [
            {"EventType": "OrchestratorStarted"},
            {"EventType": "ExecutionStarted", "Name": "Child"},
            {"EventType": "TaskScheduled", "EventId": 0, "Name": "Act"},
            {"EventType": "OrchestratorCompleted"},
            {"EventType": "OrchestratorStarted"},
            {"EventType": "TaskFailed", "TaskScheduledId": 0, "Reason": "boom"},
            {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Failed"},
            {"EventType": "OrchestratorCompleted"},
        ],
    )
    pending: list[str] = []

    async def mark_pending(instance_id: str) -> None:
        pending.append(instance_id)

    assert await env.store.rewrite_rows_for_rewind(parent, mark_pending) == [child]
    assert pending == [child, parent]
    child_rows = await rows(env.table, child)
    assert [(r["EventType"], r.get("Reason")) for r in child_rows[2:7]] == [
        ("GenericEvent", "Rewound: TaskScheduled"),
        ("OrchestratorCompleted", None),
        ("OrchestratorStarted", None),
        ("GenericEvent", "Rewound: TaskFailed"),
        ("GenericEvent", "Rewound: ExecutionCompleted"),
    ]
    parent_rows = await rows(env.table, parent)
    assert (parent_rows[2]["EventType"], parent_rows[2]["Reason"]) == (
        "SubOrchestrationInstanceCreated",
        "Rewound: SubOrchestrationInstanceCreated",
    )
    assert (parent_rows[5]["EventType"], parent_rows[5]["Reason"]) == (
        "GenericEvent",
        "Rewound: SubOrchestrationInstanceFailed",
    )
    assert parent_rows[6]["EventType"] == "GenericEvent"
