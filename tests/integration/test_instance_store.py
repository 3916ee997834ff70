"""InstanceStore against a real Table service: DTAS Instances rows, blob URLs, queries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from durable_azstorage.codec import instance_codec
from durable_azstorage.codec.instance_codec import query_filter
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import escape_partition_key
from durable_azstorage.codec.queue_codec import MessageData, encode_message_data
from durable_azstorage.connection import StorageAccount
from durable_azstorage.errors import InstanceNotFoundError
from durable_azstorage.model import (
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    ExecutionTerminatedEvent,
    HistoryEvent,
    InstanceQuery,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    TaskMessage,
)
from durable_azstorage.storage.blobs import LargePayloadStore
from durable_azstorage.storage.history_store import HistoryStore, OffloadedProperty
from durable_azstorage.storage.instance_store import (
    InstanceStore,
    decode_continuation_token,
    encode_continuation_token,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@dataclass
class Env:
    store: InstanceStore
    history: HistoryStore
    table: TableClient
    payloads: LargePayloadStore
    hub: str


@pytest.fixture
async def env(storage_account: StorageAccount, task_hub_name: str) -> AsyncIterator[Env]:
    names = TaskHubNames(task_hub_name)
    async with storage_account.table_service() as tables, storage_account.blob_service() as blobs:
        table = await tables.create_table(names.instances_table)
        history_table = await tables.create_table(names.history_table)
        payloads = LargePayloadStore(blobs, names.large_messages_container)
        yield Env(
            InstanceStore(table, payloads, task_hub_name),
            HistoryStore(history_table, payloads),
            table,
            payloads,
            task_hub_name,
        )
        await tables.delete_table(names.instances_table)
        await tables.delete_table(names.history_table)


def started(
    instance_id: str, *, execution_id: str | None = None, at: datetime = T0, **kw: Any
) -> ExecutionStartedEvent:
    return ExecutionStartedEvent(
        timestamp=at,
        orchestration_instance=OrchestrationInstance(
            instance_id=instance_id, execution_id=execution_id or uuid.uuid4().hex
        ),
        name=kw.pop("name", "Hello"),
        version=kw.pop("version", ""),
        input=kw.pop("input", '"world"'),
        generation=kw.pop("generation", 0),
        **kw,
    )


async def raw_row(table: TableClient, instance_id: str) -> dict[str, Any]:
    return dict(await table.get_entity(escape_partition_key(instance_id), ""))


def checkpoint_entity(env: Env, events: list[HistoryEvent], execution_id: str, instance_id: str) -> dict[str, Any]:
    return instance_codec.instance_update_for_checkpoint(
        events,
        instance_id=instance_id,
        execution_id=execution_id,
        custom_status=None,
        task_hub_name=env.hub,
        now=T0 + timedelta(seconds=5),
    )


async def test_create_pending_row_matches_dotnet_client_create(env: Env) -> None:
    event = started("inst/1")
    assert await env.store.create_pending(event, etag=None)
    row = await raw_row(env.table, "inst/1")
    assert row["PartitionKey"] == "inst^01" and row["RowKey"] == ""
    assert row["RuntimeStatus"] == "Pending"
    assert row["Generation"] == 0
    assert "CustomStatus" not in row
    assert row["ExecutionId"] == event.orchestration_instance.execution_id  # type: ignore[union-attr]
    assert row["CreatedTime"] == T0
    assert row["TaskHubName"] == env.hub
    assert row["Name"] == "Hello" and row["Input"] == '"world"'

    record = await env.store.get("inst/1")
    assert record is not None and record.etag
    assert record.state.runtime_status is OrchestrationStatus.Pending
    assert record.state.instance_id == "inst/1"
    assert record.state.input == '"world"'

    # A second create that did not see the row loses (409 swallowed) ...
    assert not await env.store.create_pending(started("inst/1"), etag=None)
    # ... a re-create with the read ETag replaces it, a stale ETag loses (412 swallowed).
    again = started("inst/1", generation=1, input='"again"')
    assert await env.store.create_pending(again, etag=record.etag)
    assert not await env.store.create_pending(started("inst/1", generation=2), etag=record.etag)
    row = await raw_row(env.table, "inst/1")
    assert row["Generation"] == 1 and row["Input"] == '"again"'


async def test_merge_checkpoint_sets_running_and_null_custom_status(env: Env) -> None:
    event = started("inst-run")
    execution_id = event.orchestration_instance.execution_id  # type: ignore[union-attr]
    assert execution_id is not None
    await env.store.create_pending(event, etag=None)
    events: list[HistoryEvent] = [
        OrchestratorStartedEvent(timestamp=T0),
        event,
        OrchestratorCompletedEvent(timestamp=T0),
    ]
    etag = await env.store.merge_checkpoint(checkpoint_entity(env, events, execution_id, "inst-run"))
    assert etag
    row = await raw_row(env.table, "inst-run")
    assert row["RuntimeStatus"] == "Running"
    assert row["CustomStatus"] == "null"
    assert row["ExecutionId"] == execution_id
    record = await env.store.get("inst-run")
    assert record is not None and record.state.runtime_status is OrchestrationStatus.Running


async def test_large_output_is_a_blob_url_reusing_the_history_blob(env: Env) -> None:
    instance_id = "inst-big"
    event = started(instance_id)
    execution_id = event.orchestration_instance.execution_id  # type: ignore[union-attr]
    assert execution_id is not None
    big = "o" * 40_000
    events: list[HistoryEvent] = [
        OrchestratorStartedEvent(timestamp=T0),
        event,
        ExecutionCompletedEvent(timestamp=T0, orchestration_status=OrchestrationStatus.Completed, result=big),
        OrchestratorCompletedEvent(timestamp=T0),
    ]
    offloaded: list[OffloadedProperty] = []
    await env.history.checkpoint(
        instance_id, execution_id, all_event_count=4, new_events=events, etag=None, now=T0, offloaded=offloaded
    )
    assert [o.event_type for o in offloaded] == ["ExecutionCompleted"]
    await env.store.merge_checkpoint(checkpoint_entity(env, events, execution_id, instance_id), offloaded=offloaded)
    row = await raw_row(env.table, instance_id)
    assert row["RuntimeStatus"] == "Completed"
    assert row["Output"] == env.payloads.url_for(offloaded[0].blob_name)

    record = await env.store.get(instance_id)
    assert record is not None and record.state.output == big
    no_output = await env.store.get(instance_id, fetch_output=False, fetch_input=False)
    assert no_output is not None and no_output.state.output is None and no_output.state.input is None


async def test_large_output_without_history_blob_gets_its_own(env: Env) -> None:
    instance_id = "inst-own"
    event = started(instance_id)
    execution_id = event.orchestration_instance.execution_id  # type: ignore[union-attr]
    assert execution_id is not None
    big = "p" * 40_000
    events: list[HistoryEvent] = [
        event,
        ExecutionCompletedEvent(timestamp=T0, orchestration_status=OrchestrationStatus.Completed, result=big),
    ]
    await env.store.merge_checkpoint(checkpoint_entity(env, events, execution_id, instance_id))
    row = await raw_row(env.table, instance_id)
    assert row["Output"].startswith(env.payloads.container_url + "/inst-own/history--Output-")
    record = await env.store.get(instance_id)
    assert record is not None and record.state.output == big


async def test_large_create_input_uses_input_blob_name(env: Env) -> None:
    big = "i" * 31_000
    await env.store.create_pending(started("inst-bigin", input=big), etag=None)
    row = await raw_row(env.table, "inst-bigin")
    assert row["Input"] == ""
    assert row["InputBlobName"].startswith("inst-bigin/history--Input-")
    record = await env.store.get("inst-bigin")
    assert record is not None and record.state.input == big


async def test_start_message_blob_url_yields_the_event_input(env: Env) -> None:
    """A start message > 45 KiB lives in ``…-ExecutionStarted.json.gz``; the row holds its URL."""
    event = started("inst-msg", input='"from-the-message"')
    assert event.orchestration_instance is not None
    message = MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(event=event, orchestration_instance=event.orchestration_instance),
    )
    blob_name = f"inst-msg/message-{message.activity_id.hex}-ExecutionStarted.json.gz"
    await env.payloads.upload_text(blob_name, encode_message_data(message))
    assert await env.store.create_pending(event, etag=None, input_blob_url=env.payloads.url_for(blob_name))
    assert (await raw_row(env.table, "inst-msg"))["Input"] == env.payloads.url_for(blob_name)
    record = await env.store.get("inst-msg")
    assert record is not None and record.state.input == '"from-the-message"'


async def test_foreign_blob_url_is_left_as_is(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    url = "https://elsewhere.blob.core.windows.net/otherhub-largemessages/x/history--Output-00000000-Output.json.gz"
    await env.table.upsert_entity(
        {"PartitionKey": "inst-foreign", "RowKey": "", "RuntimeStatus": "Completed", "Output": url, "Input": "1"}
    )
    record = await env.store.get("inst-foreign")
    assert record is not None and record.state.output == url
    assert "instances.blob_url_foreign" in caplog.text


async def test_terminate_without_history_rewind_and_delete(env: Env) -> None:
    await env.store.create_pending(started("inst-term"), etag=None)
    reason = "r" * 31_000
    await env.store.update_terminated_without_history(
        "inst-term", ExecutionTerminatedEvent(timestamp=T0, input=reason), now=T0
    )
    row = await raw_row(env.table, "inst-term")
    assert row["RuntimeStatus"] == "Terminated" and row["CompletedTime"] == T0
    assert row["Output"].startswith(env.payloads.container_url + "/inst-term/history--Output-")
    record = await env.store.get("inst-term")
    assert record is not None and record.state.output == reason
    assert record.state.runtime_status is OrchestrationStatus.Terminated

    await env.store.set_pending_for_rewind("inst-term", now=T0)
    assert (await raw_row(env.table, "inst-term"))["RuntimeStatus"] == "Pending"

    with pytest.raises(InstanceNotFoundError):
        await env.store.set_pending_for_rewind("no-such-instance")

    await env.store.delete("inst-term")
    assert await env.store.get("inst-term") is None
    await env.store.delete("inst-term")  # idempotent


async def seed(env: Env) -> None:
    """Ten orchestrations and two entities with distinct statuses and creation times."""
    statuses = [OrchestrationStatus.Pending, OrchestrationStatus.Running, OrchestrationStatus.Completed]
    for i in range(10):
        instance_id = f"job-{i:02d}" if i < 8 else f"other'{i}"
        await env.store.create_pending(started(instance_id, at=T0 + timedelta(minutes=i)), etag=None)
        status = statuses[i % 3]
        if status is not OrchestrationStatus.Pending:
            await env.table.update_entity(
                {"PartitionKey": escape_partition_key(instance_id), "RowKey": "", "RuntimeStatus": status.name}
            )
    for key in ("a", "b"):
        await env.store.create_pending(started(f"@counter@{key}", at=T0), etag=None)


async def collect(env: Env, **kw: Any) -> list[str]:
    return sorted([s.instance_id async for s in env.store.query_all(InstanceQuery.of(**kw))])


async def test_query_by_status_created_range_prefix_and_entities(env: Env) -> None:
    await seed(env)
    assert await collect(env, runtime_status=[OrchestrationStatus.Completed]) == ["job-02", "job-05", "other'8"]
    assert await collect(env, runtime_status=[OrchestrationStatus.Completed, OrchestrationStatus.Running]) == [
        "job-01",
        "job-02",
        "job-04",
        "job-05",
        "job-07",
        "other'8",
    ]
    assert await collect(env, created_from=T0 + timedelta(minutes=3), created_to=T0 + timedelta(minutes=5)) == [
        "job-03",
        "job-04",
        "job-05",
    ]
    assert await collect(env, instance_id_prefix="other'") == ["other'8", "other'9"]
    assert await collect(env, instance_id_prefix="job-0", runtime_status=[OrchestrationStatus.Pending]) == [
        "job-00",
        "job-03",
        "job-06",
    ]
    everything = await collect(env)
    assert len(everything) == 12
    assert await collect(env, exclude_entities=True) == [i for i in everything if not i.startswith("@")]
    assert await collect(env, instance_id_prefix="@") == ["@counter@a", "@counter@b"]


async def test_query_pages_with_continuation(env: Env) -> None:
    await seed(env)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        states, token = await env.store.query(InstanceQuery(page_size=5, fetch_input=False), token)
        assert len(states) <= 5
        assert all(s.input is None for s in states)
        seen += [s.instance_id for s in states]
        pages += 1
        if token is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 12


async def test_query_prefix_uses_escaped_keys(env: Env) -> None:
    for instance_id in ("a/b-1", "a/b-2", "a0", "a^x"):
        await env.store.create_pending(started(instance_id), etag=None)
    assert await collect(env, instance_id_prefix="a/") == ["a/b-1", "a/b-2"]
    assert await collect(env, instance_id_prefix="a^") == ["a^x"]


def test_filter_text_and_token_round_trip() -> None:
    text = query_filter(
        InstanceQuery.of(
            runtime_status=[OrchestrationStatus.Failed, OrchestrationStatus.Running],
            created_from=T0,
            instance_id_prefix="it's/",
        )
    )
    assert text == (
        "(CreatedTime ge datetime'2024-05-01T12:00:00.0000000Z') and "
        "(RuntimeStatus eq 'Running' or RuntimeStatus eq 'Failed') and "
        "(PartitionKey ge 'it''s^0') and (PartitionKey lt 'it''s^1')"
    )
    assert query_filter(InstanceQuery(exclude_entities=True)) == "PartitionKey lt '@' or PartitionKey ge 'A'"
    assert query_filter(InstanceQuery()) is None
    token = {"PartitionKey": "p", "RowKey": ""}
    encoded = encode_continuation_token(token)
    assert encoded is not None and decode_continuation_token(encoded) == token
    with pytest.raises(ValueError):
        decode_continuation_token("not a token!")


async def test_purge_instance_history_rows_and_blobs(env: Env) -> None:
    instance_id = "inst-purge"
    event = started(instance_id)
    execution_id = event.orchestration_instance.execution_id  # type: ignore[union-attr]
    assert execution_id is not None
    events: list[HistoryEvent] = [
        OrchestratorStartedEvent(timestamp=T0),
        event,
        ExecutionCompletedEvent(timestamp=T0, result="q" * 40_000),
        OrchestratorCompletedEvent(timestamp=T0),
    ]
    await env.store.create_pending(event, etag=None)
    offloaded: list[OffloadedProperty] = []
    await env.history.checkpoint(
        instance_id, execution_id, all_event_count=4, new_events=events, etag=None, now=T0, offloaded=offloaded
    )
    await env.store.merge_checkpoint(checkpoint_entity(env, events, execution_id, instance_id), offloaded=offloaded)

    assert await env.history.purge(instance_id) == 5
    assert await env.payloads.delete_prefix(instance_id) == 1
    await env.store.delete(instance_id)
    assert await env.store.get(instance_id) is None
    assert (await env.history.load(instance_id)).events == []
