"""The ``{hub}Instances`` table: one status row per instance id, in the DTAS layout.

The row is what clients query and what .NET workers consult to de-duplicate starts
(docs/storage-layout.md; DTAS ``AzureTableTrackingStore``), so every write here mirrors the method
DTAS uses for the same transition: Insert/Replace for a client create, InsertOrMerge for a
checkpoint, Merge with ``*`` for terminate-without-history and rewind.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from ..codec import history_codec, instance_codec, table_columns
from ..codec.partitioning import escape_partition_key
from ..errors import InstanceNotFoundError, MessageDecodeError
from ..model import (
    EventType,
    ExecutionStartedEvent,
    ExecutionTerminatedEvent,
    HistoryEvent,
    InstanceQuery,
    OrchestrationState,
    OrchestrationStatus,
    utc_now,
)
from .blobs import LargePayloadStore
from .fresh_starts import fresh_starts
from .history_store import OffloadedProperty
from .instance_signals import instance_signals

__all__ = [
    "INSTANCE_COLUMNS",
    "InstanceRecord",
    "InstanceStore",
    "decode_continuation_token",
    "encode_continuation_token",
]

log = logging.getLogger(__name__)

INSTANCE_COLUMNS = (
    "PartitionKey",
    "RowKey",
    "Timestamp",
    "ExecutionId",
    "Name",
    "Version",
    "Input",
    "Output",
    "CustomStatus",
    "CreatedTime",
    "LastUpdatedTime",
    "CompletedTime",
    "RuntimeStatus",
    "ScheduledStartTime",
    "Generation",
    "Tags",
    "TaskHubName",
)
"""The columns of DTAS ``OrchestrationInstanceStatus``; projections list them explicitly."""

_LARGE_INSTANCE_COLUMNS = ("Input", "Output")
# History columns whose blob an Instances column may point at, newest event wins.
_HISTORY_SOURCES: dict[str, dict[str, str]] = {
    "Input": {EventType.ExecutionStarted.name: "Input"},
    "Output": {
        EventType.ExecutionCompleted.name: "Result",
        EventType.ContinueAsNew.name: "Result",
        EventType.ExecutionTerminated.name: "Input",
        EventType.ExecutionSuspended.name: "Reason",
        EventType.ExecutionResumed.name: "Reason",
    },
}
_STARTED_MESSAGE_SUFFIX = "ExecutionStarted.json.gz"


@dataclass(frozen=True)
class InstanceRecord:
    """An Instances row as a state object plus the row ETag (for Replace-with-If-Match)."""

    state: OrchestrationState
    etag: str


class InstanceStore:
    """Reads and writes the Instances table of one task hub."""

    def __init__(self, table_client: TableClient, payloads: LargePayloadStore, task_hub_name: str) -> None:
        self._table = table_client
        self._payloads = payloads
        self.task_hub_name = task_hub_name
        self._fresh_key = str(getattr(table_client, "url", task_hub_name)).split("?", 1)[0].rstrip("/").lower()

    def watch(self, instance_id: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """An event set when this process next writes the instance's row (instance_signals.py)."""
        return instance_signals.watch(self._fresh_key, escape_partition_key(instance_id))

    def inserted_here(self, instance_id: str, execution_id: str) -> bool:
        """Whether a client in this process just inserted this execution's Pending row (once)."""
        return fresh_starts.take(self._fresh_key, instance_id, execution_id)

    # ------------------------------------------------------------------ read

    async def get(
        self, instance_id: str, *, fetch_input: bool = True, fetch_output: bool = True
    ) -> InstanceRecord | None:
        """Point read of one row; blob-URL Input/Output are downloaded when fetched."""
        try:
            entity = await self._table.get_entity(
                escape_partition_key(instance_id), "", select=_projection(fetch_input, fetch_output)
            )
        except ResourceNotFoundError:
            log.debug("instances.status_fetched", extra={"instance_id": instance_id, "status": "NotFound"})
            return None
        state = await self._to_state(entity, fetch_input=fetch_input, fetch_output=fetch_output)
        log.debug("instances.status_fetched", extra={"instance_id": instance_id, "status": state.runtime_status})
        return InstanceRecord(state, str(entity.metadata.get("etag", "")))

    async def _to_state(self, entity: TableEntity, *, fetch_input: bool, fetch_output: bool) -> OrchestrationState:
        state = instance_codec.instance_entity_to_state(entity)
        if not fetch_input:
            state.input = None
        elif state.input:
            state.input = await self._resolve_input(state.instance_id, state.input)
        elif isinstance(entity.get("InputBlobName"), str):
            # Client-create fallback (docs/storage-layout.md, large Input): DTAS never reads it back, we do.
            state.input = await self._download_or_none(state.instance_id, str(entity["InputBlobName"]))
        if not fetch_output:
            state.output = None
        elif state.output:
            state.output = await self._resolve_output(state.instance_id, state.output)
        return state

    async def _resolve_input(self, instance_id: str, value: str) -> str | None:
        blob_name = self._own_blob_name(instance_id, value)
        if blob_name is None:
            return value
        text = await self._download_or_none(instance_id, blob_name)
        if text is None or not urlsplit(value).path.endswith(_STARTED_MESSAGE_SUFFIX):
            return text if text is not None else value
        return _input_from_start_message(instance_id, text, value)

    async def _resolve_output(self, instance_id: str, value: str) -> str | None:
        blob_name = self._own_blob_name(instance_id, value)
        if blob_name is None:
            return value
        text = await self._download_or_none(instance_id, blob_name)
        return text if text is not None else value

    def _own_blob_name(self, instance_id: str, value: str) -> str | None:
        """The blob a column points to, or None when the value is not a usable blob URL."""
        if not instance_codec.is_blob_url(value):
            return None
        blob_name = self._payloads.blob_name_from_url(value)
        if blob_name is None:
            log.warning("instances.blob_url_foreign", extra={"instance_id": instance_id, "url": value})
        return blob_name

    async def _download_or_none(self, instance_id: str, blob_name: str) -> str | None:
        try:
            return await self._payloads.download_text(blob_name)
        except ResourceNotFoundError:
            log.warning("instances.blob_missing", extra={"instance_id": instance_id, "blob": blob_name})
            return None

    # ----------------------------------------------------------------- write

    async def create_pending(
        self,
        started_event: ExecutionStartedEvent,
        *,
        etag: str | None,
        input_blob_url: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """``SetNewExecutionAsync``: write the Pending row after the start message was queued.

        Insert when no row was read (``etag`` None), otherwise Replace with ``If-Match`` so the
        previous execution's Output/CustomStatus/CompletedTime disappear. A 409/412 means a
        concurrent client won; like DTAS we report False instead of raising.
        """
        entity = instance_codec.instance_entity_for_create(
            started_event, self.task_hub_name, input_override=input_blob_url, now=now or utc_now()
        )
        await self._offload_with_blob_name_column(entity)
        try:
            if etag is None:
                await self._table.create_entity(entity)
                instance = started_event.orchestration_instance
                if instance is not None and instance.execution_id:
                    fresh_starts.record(self._fresh_key, instance.instance_id, instance.execution_id)
            else:
                if started_event.orchestration_instance is not None:
                    fresh_starts.forget(self._fresh_key, started_event.orchestration_instance.instance_id)
                await self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                log.info(
                    "instances.create_conflict",
                    extra={"partition": entity["PartitionKey"], "status": exc.status_code},
                )
                return False
            raise
        log.debug("instances.status_update", extra={"partition": entity["PartitionKey"], "status": "Pending"})
        return True

    async def merge_checkpoint(self, entity: Mapping[str, Any], *, offloaded: Sequence[OffloadedProperty] = ()) -> str:
        """InsertOrMerge the checkpoint columns (``UpdateInstanceTableAsync``); returns the ETag.

        An oversized Input/Output is stored as a blob URL in the column itself (as DTAS does): the URL
        of the history blob the same checkpoint uploaded when there is one, else a new blob.
        """
        row = dict(entity)
        for column in _LARGE_INSTANCE_COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and column in table_columns.oversized_properties({column: value}):
                reused = _history_blob_for(column, offloaded)
                blob_name = reused or await self._upload_instance_blob(row, column, value)
                row[column] = self._payloads.url_for(blob_name)
        result = await self._table.upsert_entity(row, mode=UpdateMode.MERGE)
        instance_signals.written(self._fresh_key, str(row.get("PartitionKey")))
        log.debug(
            "instances.status_update",
            extra={"partition": row.get("PartitionKey"), "status": row.get("RuntimeStatus")},
        )
        return str(result.get("etag", ""))

    async def rewrite_from_history(self, instance_id: str, execution_id: str, events: Sequence[HistoryEvent]) -> None:
        """Make the row say what a final history says, keeping its custom status.

        The DTAS repair for a crash between a final episode's history commit and its Instances
        write: no later episode would rewrite the row, so it would read ``Running`` forever.
        """
        entity = instance_codec.instance_update_for_checkpoint(
            list(events),
            instance_id=instance_id,
            execution_id=execution_id,
            custom_status=None,
            task_hub_name=self.task_hub_name,
            now=events[-1].timestamp,
        )
        entity.pop("CustomStatus", None)
        await self.merge_checkpoint(entity)

    async def update_terminated_without_history(
        self, instance_id: str, terminated_event: ExecutionTerminatedEvent, *, now: datetime | None = None
    ) -> None:
        """``UpdateStatusForTerminationAsync``: terminate a Pending instance with no history."""
        row: dict[str, Any] = {
            "PartitionKey": escape_partition_key(instance_id),
            "RowKey": "",
            "RuntimeStatus": OrchestrationStatus.Terminated.name,
            "LastUpdatedTime": terminated_event.timestamp,
            "CompletedTime": now or utc_now(),
            "Output": terminated_event.input,
        }
        output = terminated_event.input
        if isinstance(output, str) and table_columns.oversized_properties({"Output": output}):
            row["Output"] = self._payloads.url_for(await self._upload_instance_blob(row, "Output", output))
        await self._merge_existing(instance_id, row)

    async def mark_poisoned(self, instance_id: str, message: str, *, now: datetime | None = None) -> None:
        """A message of this instance was quarantined: ``Failed`` with a ``PoisonMessage`` error.

        History is untouched, so requeueing the message lets the next episode rewrite the row
        from history. A missing row (the instance was purged) is left missing.
        """
        row = {
            "PartitionKey": escape_partition_key(instance_id),
            "RowKey": "",
            "RuntimeStatus": OrchestrationStatus.Failed.name,
            "Output": f"PoisonMessage: {message}",
            "LastUpdatedTime": now or utc_now(),
        }
        try:
            await self._merge_existing(instance_id, row)
        except InstanceNotFoundError:
            return

    async def set_pending_for_rewind(self, instance_id: str, *, now: datetime | None = None) -> None:
        """``UpdateStatusForRewindAsync``: back to Pending so the rewind message replays it."""
        row = {
            "PartitionKey": escape_partition_key(instance_id),
            "RowKey": "",
            "RuntimeStatus": OrchestrationStatus.Pending.name,
            "LastUpdatedTime": now or utc_now(),
        }
        await self._merge_existing(instance_id, row)

    async def delete(self, instance_id: str) -> None:
        """Delete the row unconditionally (``ETag *``); a missing row is not an error."""
        await self._table.delete_entity(escape_partition_key(instance_id), "")

    async def _merge_existing(self, instance_id: str, row: dict[str, Any]) -> None:
        row = {key: value for key, value in row.items() if value is not None}
        try:
            await self._table.update_entity(row, mode=UpdateMode.MERGE)
        except ResourceNotFoundError as exc:
            raise InstanceNotFoundError(f"instance {instance_id!r} has no Instances row") from exc
        log.debug(
            "instances.status_update",
            extra={"partition": row["PartitionKey"], "status": row.get("RuntimeStatus")},
        )

    async def _offload_with_blob_name_column(self, entity: dict[str, Any]) -> None:
        """Client-create path: ``Input`` too big for a cell becomes ``""`` + ``InputBlobName``."""
        for prop in table_columns.oversized_properties(entity):
            blob_name = await self._upload_instance_blob(entity, prop, str(entity[prop]))
            entity[prop] = ""
            entity[table_columns.blob_name_property(prop)] = blob_name

    async def _upload_instance_blob(self, row: Mapping[str, Any], column: str, value: str) -> str:
        """DTAS names Instances-row blobs as history blobs with an empty RowKey and the column
        name in the event-type slot: ``{PK}/history--{Col}-{R:X8}-{Col}.json.gz``."""
        blob_name = history_codec.history_property_blob_name(str(row["PartitionKey"]), "", column, column)
        await self._payloads.upload_text(blob_name, value)
        log.info(
            "instances.property_offloaded",
            extra={"partition": row["PartitionKey"], "column": column, "blob": blob_name},
        )
        return blob_name

    # ----------------------------------------------------------------- query

    async def query(
        self, query: InstanceQuery, continuation_token: str | None = None
    ) -> tuple[list[OrchestrationState], str | None]:
        """One service page of matching rows and an opaque token for the next (None at the end).

        Filtering on non-key columns happens server-side per partition scan, so a page may
        hold fewer than ``page_size`` rows (even none) while a token is still returned.
        """
        query_filter = instance_codec.query_filter(query)
        fetch_input, fetch_output, page_size = query.fetch_input, query.fetch_output, query.page_size
        select = _projection(fetch_input, fetch_output)
        if query_filter is None:
            pager = self._table.list_entities(results_per_page=page_size, select=select)
        else:
            pager = self._table.query_entities(query_filter, results_per_page=page_size, select=select)
        # The SDK's token is a {PartitionKey, RowKey} dict although by_page() is typed as str.
        sdk_token: Any = decode_continuation_token(continuation_token)
        pages = pager.by_page(continuation_token=sdk_token)
        entities: list[TableEntity] = []
        async for page in pages:
            entities = [entity async for entity in page]
            break
        next_token = encode_continuation_token(getattr(pages, "continuation_token", None))
        states = await asyncio.gather(
            *(self._to_state(e, fetch_input=fetch_input, fetch_output=fetch_output) for e in entities)
        )
        log.debug(
            "instances.queried",
            extra={"filter": query_filter, "rows": len(states), "more": next_token is not None},
        )
        return list(states), next_token

    async def query_all(self, query: InstanceQuery) -> AsyncIterator[OrchestrationState]:
        """Every matching row, following continuation tokens page by page."""
        token: str | None = None
        while True:
            states, token = await self.query(query, token)
            for state in states:
                yield state
            if token is None:
                return




def encode_continuation_token(token: object) -> str | None:
    """The SDK's ``{"PartitionKey", "RowKey"}`` token as an opaque URL-safe string."""
    if not token:
        return None
    raw = json.dumps(token, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_continuation_token(token: str | None) -> dict[str, str] | None:
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ValueError(f"invalid continuation token {token!r}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, (str, type(None))) for v in value.values()):
        raise ValueError(f"invalid continuation token {token!r}")
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _projection(fetch_input: bool, fetch_output: bool) -> list[str] | None:
    if fetch_input and fetch_output:
        return None
    return [c for c in INSTANCE_COLUMNS if (fetch_input or c != "Input") and (fetch_output or c != "Output")]


def _history_blob_for(column: str, offloaded: Sequence[OffloadedProperty]) -> str | None:
    sources = _HISTORY_SOURCES[column]
    for item in reversed(offloaded):
        if sources.get(item.event_type) == item.property_name:
            return item.blob_name
    return None


def _input_from_start_message(instance_id: str, text: str, url: str) -> str | None:
    """A ``…ExecutionStarted.json.gz`` blob holds the whole start message, not the input."""
    from ..codec.queue_codec import decode_message_data

    try:
        message = decode_message_data(text)
        event = message.task_message.event if message.task_message is not None else None
    except (MessageDecodeError, ValueError):
        log.warning("instances.input_blob_unreadable", extra={"instance_id": instance_id, "url": url}, exc_info=True)
        return url
    if isinstance(event, ExecutionStartedEvent):
        return event.input
    log.warning("instances.input_blob_unrecognized", extra={"instance_id": instance_id, "url": url})
    return url
