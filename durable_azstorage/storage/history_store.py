"""The ``{hub}History`` table: load, checkpoint and purge one instance's history.

Layout and algorithms follow DurableTask.AzureStorage exactly (docs/storage-layout.md; DTAS
``AzureTableTrackingStore.GetHistoryEventsAsync`` / ``UpdateStateAsync``) so that .NET and Python
workers can share a task hub:
rows are keyed by the escaped instance id and an ``X16`` sequence number, a ``sentinel``
row carries the ETag that serialises writers, and oversized string columns live in gzip
blobs referenced by ``{Prop}BlobName`` columns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from ..codec import history_codec as codec
from ..codec import table_columns
from ..codec.odata import odata_string
from ..codec.partitioning import SENTINEL_ROW_KEY, escape_partition_key, history_row_key
from ..errors import CheckpointConflictError
from ..model import HistoryEvent
from .blobs import LargePayloadStore
from .history_rewind import MarkPending, rewind_history

__all__ = [
    "MAX_EVENTS_PER_TRANSACTION",
    "MAX_TRANSACTION_ESTIMATE_BYTES",
    "HistoryLoad",
    "HistoryStore",
    "OffloadedProperty",
]

log = logging.getLogger(__name__)

MAX_EVENTS_PER_TRANSACTION = 99
"""History rows per entity-group transaction; the sentinel makes it Azure's limit of 100."""

MAX_TRANSACTION_ESTIMATE_BYTES = 3 * 1024 * 1024
"""DTAS flushes once its size estimate *exceeds* 3 MiB, keeping clear of the 4 MiB limit."""

PURGE_BATCH_SIZE = 100
PURGE_PARALLEL_BATCHES = 10

_EXECUTION_ID = "ExecutionId"
_CHECKPOINT_COMPLETED = "CheckpointCompletedTimestamp"
_IS_CHECKPOINT_COMPLETE = "IsCheckpointComplete"
INTENT_COLUMN = "CheckpointIntentBlob"
"""Not in DTAS: while a multi-batch checkpoint is being written, the blob holding all of it."""
APPLIED_MESSAGES_COLUMN = "AppliedMessageIds"
"""Not in DTAS (.NET ignores it): queue message ids whose effect the committed history holds."""
EPISODE_CLOCK_COLUMN = "EpisodeClock"
"""Not in DTAS (.NET ignores it): the clock an uncommitted episode sent entity requests with
(worker/episode_clock.py), so a re-run of that episode sends the same requests."""
_CONFLICT_STATUSES = frozenset({409, 412})


@dataclass
class HistoryLoad:
    """One instance's current history, plus what a later checkpoint needs to commit on top.

    ``etag`` is the sentinel's even when the history is treated as empty (an expected
    execution id that is not the current one), because the next checkpoint must still
    merge the existing sentinel rather than try to insert a second one.
    """

    events: list[HistoryEvent]
    execution_id: str | None
    etag: str | None
    checkpoint_completed_at: datetime | None = None
    is_checkpoint_complete: bool | None = None
    blob_names: list[str] = field(default_factory=list)
    applied_message_ids: list[str] = field(default_factory=list)
    episode_clock: str | None = None
    """The sentinel's ``EpisodeClock`` column (None when absent)."""

    @property
    def exists(self) -> bool:
        return bool(self.events)


@dataclass(frozen=True)
class OffloadedProperty:
    """A history column that a checkpoint moved to a blob.

    The Instances row points at the same blob (by URL) instead of uploading the value a
    second time, exactly like DTAS ``SetInstancesTablePropertyFromHistoryProperty``.
    """

    sequence_number: int
    event_type: str
    property_name: str
    blob_name: str


class HistoryStore:
    """Reads and writes the History table of one task hub (one ``TableClient``)."""

    def __init__(self, table_client: TableClient, payloads: LargePayloadStore) -> None:
        self._table = table_client
        self._payloads = payloads

    @property
    def table_name(self) -> str:
        return str(self._table.table_name)

    # ------------------------------------------------------------------ load

    async def load(self, instance_id: str, expected_execution_id: str | None = None) -> HistoryLoad:
        """``GetHistoryEventsAsync``: the newest generation, cut at the first foreign row.

        ContinueAsNew and re-creation overwrite rows from RowKey 0 without deleting the tail
        of a longer, older generation, so the sentinel's ExecutionId decides which rows count.
        """
        entities = await self._query_partition(instance_id, expected_execution_id)
        sentinel = next((e for e in reversed(entities) if e.get("RowKey") == SENTINEL_ROW_KEY), None)
        if (
            sentinel is not None
            and sentinel.get(_IS_CHECKPOINT_COMPLETE) is False
            and await self._roll_forward(instance_id, sentinel)
        ):
            return await self.load(instance_id, expected_execution_id)
        sentinel_execution_id = _str_or_none(sentinel.get(_EXECUTION_ID)) if sentinel is not None else None
        result = HistoryLoad(events=[], execution_id=expected_execution_id, etag=_etag_of(sentinel))
        if sentinel is not None:
            completed_at = sentinel.get(_CHECKPOINT_COMPLETED)
            result.checkpoint_completed_at = completed_at if isinstance(completed_at, datetime) else None
            complete = sentinel.get(_IS_CHECKPOINT_COMPLETE)
            result.is_checkpoint_complete = complete if isinstance(complete, bool) else None
            result.applied_message_ids = _applied_ids(sentinel.get(APPLIED_MESSAGES_COLUMN))
            result.episode_clock = _str_or_none(sentinel.get(EPISODE_CLOCK_COLUMN))
        if entities and (expected_execution_id is None or expected_execution_id == sentinel_execution_id):
            execution_id = sentinel_execution_id or _str_or_none(entities[0].get(_EXECUTION_ID))
            rows = _current_generation(entities, execution_id)
            result.blob_names = await self._inflate_large_properties(rows)
            result.events = [codec.entity_to_history_event(row) for row in rows]
            result.execution_id = execution_id
        log.debug(
            "history.fetched",
            extra={
                "instance_id": instance_id,
                "execution_id": result.execution_id,
                "events": len(result.events),
                "rows": len(entities),
                "etag": result.etag,
            },
        )
        return result

    async def _query_partition(self, instance_id: str, expected_execution_id: str | None) -> list[TableEntity]:
        query = f"PartitionKey eq {odata_string(escape_partition_key(instance_id))}"
        if expected_execution_id:
            query += (
                f" and (RowKey eq {odata_string(SENTINEL_ROW_KEY)}"
                f" or {_EXECUTION_ID} eq {odata_string(expected_execution_id)})"
            )
        entities = [entity async for entity in self._table.query_entities(query)]
        # The service already returns RowKey order; sorting keeps the cut-off rule honest
        # even if a proxy or emulator does not.
        entities.sort(key=lambda e: str(e.get("RowKey", "")))
        return entities

    async def _inflate_large_properties(self, rows: Sequence[TableEntity]) -> list[str]:
        """Replace every ``{Prop}BlobName`` column by the blob's text, in place."""
        jobs: list[tuple[TableEntity, str, str]] = []
        for row in rows:
            for prop in table_columns.LARGE_PROPERTY_CANDIDATES:
                blob_name = row.get(table_columns.blob_name_property(prop))
                if isinstance(blob_name, str) and blob_name:
                    jobs.append((row, prop, blob_name))
        if not jobs:
            return []
        texts = await asyncio.gather(*(self._download_property(name) for _, _, name in jobs))
        for (row, prop, blob_name), text in zip(jobs, texts, strict=True):
            row[prop] = text
            del row[table_columns.blob_name_property(prop)]
            log.debug("history.property_inflated", extra={"blob": blob_name, "property": prop})
        return [name for _, _, name in jobs]

    async def _download_property(self, blob_name: str) -> str:
        try:
            return await self._payloads.download_text(blob_name)
        except ResourceNotFoundError:
            log.error("history.blob_missing", extra={"blob": blob_name})
            raise

    # ------------------------------------------------------------ checkpoint

    async def checkpoint(
        self,
        instance_id: str,
        execution_id: str,
        *,
        all_event_count: int,
        new_events: Sequence[HistoryEvent],
        etag: str | None,
        now: datetime,
        offloaded: list[OffloadedProperty] | None = None,
        applied_message_ids: Sequence[str] | None = None,
    ) -> str:
        """Append ``new_events`` (the tail of a history of ``all_event_count`` events).

        Returns the sentinel's new ETag. Raises :class:`CheckpointConflictError` when the
        sentinel changed (412) or appeared (409) underneath us: another worker owns the
        instance and nothing more may be written. A new generation (ContinueAsNew,
        re-create) passes its whole history as ``new_events`` and the previous ETag.
        Blobs created for oversized columns are appended to ``offloaded`` if given.
        """
        first_sequence = all_event_count - len(new_events)
        if first_sequence < 0:
            raise ValueError(f"all_event_count={all_event_count} is smaller than len(new_events)={len(new_events)}")
        if not new_events:
            if etag is None:
                raise ValueError("a checkpoint without new events needs an existing sentinel ETag")
            return etag
        partition_key = escape_partition_key(instance_id)
        entities = [
            self._history_entity(event, instance_id, partition_key, first_sequence + i, execution_id)
            for i, event in enumerate(new_events)
        ]
        blobs = await self._offload_large_properties(entities, first_sequence)
        if offloaded is not None:
            offloaded.extend(blobs)
        batches = list(_batches(entities))
        intent = None
        if len(batches) > 1:
            intent = await self._write_intent(partition_key, execution_id, entities, all_event_count, now,
                                              applied_message_ids)
        current_etag = await self._commit_batches(
            instance_id, execution_id, batches, etag, now, all_event_count, applied_message_ids, intent
        )
        if intent is not None:
            await self._payloads.delete(intent)
        return current_etag

    async def _commit_batches(
        self,
        instance_id: str,
        execution_id: str,
        batches: Sequence[tuple[list[dict[str, Any]], bool]],
        etag: str | None,
        now: datetime,
        all_event_count: int,
        applied_message_ids: Sequence[str] | None,
        intent: str | None,
    ) -> str:
        current_etag = etag
        for batch, is_final in batches:
            current_etag = await self._commit_batch(
                instance_id,
                execution_id,
                batch,
                current_etag,
                now if is_final else None,
                all_event_count,
                # Only the final batch completes the episode, so only it records what was applied.
                applied_message_ids if is_final else None,
                intent=(None if intent is None else ("" if is_final else intent)),
            )
        assert current_etag is not None  # at least one batch was committed
        return current_etag

    async def pin_episode_clock(self, instance_id: str, execution_id: str, value: str, etag: str | None) -> str:
        """Record an episode's clock on the sentinel before the episode sends anything.

        Guarded like a checkpoint: the sentinel must not have changed since ``etag`` (None: it
        must not exist yet, and is created for ``execution_id`` without events). Returns the new
        eTag, which the episode's checkpoint then commits on. Raises
        :class:`CheckpointConflictError` when another writer got there first.
        """
        sentinel: dict[str, Any] = {
            "PartitionKey": escape_partition_key(instance_id),
            "RowKey": SENTINEL_ROW_KEY,
            EPISODE_CLOCK_COLUMN: value,
        }
        try:
            if etag is None:
                sentinel[_EXECUTION_ID] = execution_id
                result = await self._table.create_entity(sentinel)
            else:
                result = await self._table.update_entity(
                    sentinel, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except HttpResponseError as exc:
            if exc.status_code in _CONFLICT_STATUSES:
                raise CheckpointConflictError(
                    f"history of instance {instance_id!r} was changed by another writer "
                    f"(HTTP {exc.status_code}); abandon this work item"
                ) from exc
            raise
        new_etag = _str_or_none(result.get("etag"))
        if new_etag is None:
            raise RuntimeError("the Table service returned no ETag for the history sentinel")
        log.debug("history.episode_clock_pinned", extra={"instance_id": instance_id, "value": value})
        return new_etag

    # --------------------------------------------------- multi-batch intent (issue 14)

    async def _write_intent(
        self,
        partition_key: str,
        execution_id: str,
        entities: Sequence[dict[str, Any]],
        all_event_count: int,
        now: datetime,
        applied_message_ids: Sequence[str] | None,
    ) -> str:
        """Before the first of several batches, the whole checkpoint goes to a blob.

        A crash between batches leaves the sentinel incomplete, pointing at this blob; the next
        load finishes the checkpoint from it (roll forward). Rolling back is not possible for a
        new generation (ContinueAsNew, re-create): its first batch already overwrote the old
        generation's rows from RowKey 0.
        """
        blob_name = f"{partition_key}/history-checkpoint-{execution_id}-{random.getrandbits(32):08X}.json.gz"
        document = {
            "executionId": execution_id,
            "eventCount": all_event_count,
            "completedAt": _encode_value(now),
            "appliedMessageIds": None if applied_message_ids is None else list(applied_message_ids),
            "rows": [{k: _encode_value(v) for k, v in row.items()} for row in entities],
        }
        await self._payloads.upload_text(blob_name, json.dumps(document, separators=(",", ":")))
        return blob_name

    async def _roll_forward(self, instance_id: str, sentinel: TableEntity) -> bool:
        """Finish an interrupted multi-batch checkpoint; False when there is nothing to finish."""
        blob_name = _str_or_none(sentinel.get(INTENT_COLUMN))
        if not blob_name:
            return False
        try:
            document = json.loads(await self._payloads.download_text(blob_name))
        except ResourceNotFoundError:
            log.error("history.checkpoint_intent_missing", extra={"instance_id": instance_id, "blob": blob_name})
            return False
        rows = [{k: _decode_value(v) for k, v in row.items()} for row in document["rows"]]
        execution_id = str(document["executionId"])
        await self._commit_batches(
            instance_id,
            execution_id,
            list(_batches(rows)),
            _etag_of(sentinel),
            _decode_value(document["completedAt"]),
            int(document["eventCount"]),
            document.get("appliedMessageIds"),
            blob_name,
        )
        await self._payloads.delete(blob_name)
        log.warning(
            "history.checkpoint_rolled_forward",
            extra={"instance_id": instance_id, "execution_id": execution_id, "rows": len(rows)},
        )
        return True

    @staticmethod
    def _history_entity(
        event: HistoryEvent, instance_id: str, partition_key: str, sequence_number: int, execution_id: str
    ) -> dict[str, Any]:
        entity = codec.history_event_to_entity(
            event, instance_id=instance_id, sequence_number=sequence_number, execution_id=execution_id
        )
        entity["PartitionKey"] = partition_key
        entity["RowKey"] = history_row_key(sequence_number)
        entity[_EXECUTION_ID] = execution_id
        return entity

    async def _offload_large_properties(
        self, entities: Sequence[dict[str, Any]], first_sequence: int
    ) -> list[OffloadedProperty]:
        """Upload oversized columns before any row is written (DTAS ``CompressLargeMessageAsync``).

        Blob names carry a random suffix, so a losing split-brain writer never overwrites the
        blob a committed row points to.
        """
        plan: list[OffloadedProperty] = []
        for offset, entity in enumerate(entities):
            event_type = str(entity.get("EventType", ""))
            for prop in table_columns.oversized_properties(entity):
                name = codec.history_property_blob_name(entity["PartitionKey"], entity["RowKey"], event_type, prop)
                plan.append(OffloadedProperty(first_sequence + offset, event_type, prop, name))
        if not plan:
            return []
        await asyncio.gather(
            *(
                self._payloads.upload_text(
                    item.blob_name, str(entities[item.sequence_number - first_sequence][item.property_name])
                )
                for item in plan
            )
        )
        for item in plan:
            entity = entities[item.sequence_number - first_sequence]
            entity[item.property_name] = ""
            entity[table_columns.blob_name_property(item.property_name)] = item.blob_name
            log.info(
                "history.property_offloaded",
                extra={
                    "partition": entity["PartitionKey"],
                    "row": entity["RowKey"],
                    "property": item.property_name,
                    "blob": item.blob_name,
                },
            )
        return plan

    async def _commit_batch(
        self,
        instance_id: str,
        execution_id: str,
        batch: Sequence[dict[str, Any]],
        etag: str | None,
        completed_at: datetime | None,
        all_event_count: int,
        applied_message_ids: Sequence[str] | None = None,
        *,
        intent: str | None = None,
    ) -> str:
        """One entity-group transaction: the rows plus the sentinel that guards them."""
        sentinel = codec.sentinel_entity(
            instance_id, execution_id, checkpoint_complete=completed_at is not None, completed_at=completed_at
        )
        if intent is not None:  # the blob to finish from; "" once the final batch is in
            sentinel[INTENT_COLUMN] = intent
        if applied_message_ids is not None:
            sentinel[APPLIED_MESSAGES_COLUMN] = json.dumps(list(applied_message_ids), separators=(",", ":"))
        sentinel["PartitionKey"] = batch[0]["PartitionKey"]
        sentinel["RowKey"] = SENTINEL_ROW_KEY
        if completed_at is None:
            # Intermediate batches must leave the previous completion time in place (merge).
            sentinel.pop(_CHECKPOINT_COMPLETED, None)
        operations: list[tuple[Any, ...]] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in batch]
        if etag is None:
            operations.append(("create", sentinel))
        else:
            operations.append(
                (
                    "update",
                    sentinel,
                    {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
                )
            )
        try:
            results = await self._table.submit_transaction(operations)
        except HttpResponseError as exc:
            if exc.status_code in _CONFLICT_STATUSES:
                log.warning(
                    "history.split_brain_detected",
                    extra={
                        "instance_id": instance_id,
                        "execution_id": execution_id,
                        "new_events": len(batch),
                        "total_events": all_event_count,
                        "status": exc.status_code,
                        "etag": etag or "",
                    },
                )
                raise CheckpointConflictError(
                    f"history of instance {instance_id!r} was changed by another writer "
                    f"(HTTP {exc.status_code}); abandon this work item"
                ) from exc
            raise
        new_etag = _str_or_none(results[-1].get("etag"))
        if new_etag is None:
            raise RuntimeError("the Table service returned no ETag for the history sentinel")
        log.debug(
            "history.appended",
            extra={
                "instance_id": instance_id,
                "execution_id": execution_id,
                "rows": len(batch),
                "final": completed_at is not None,
                "etag": etag,
                "new_etag": new_etag,
            },
        )
        return new_etag

    # --------------------------------------------------------------- cleanup

    async def delete_blobs(self, names: Iterable[str]) -> int:
        """Delete blobs of a replaced generation; only call after the new history committed."""
        unique = sorted(set(names))
        if not unique:
            return 0
        deleted = await asyncio.gather(*(self._payloads.delete(name) for name in unique))
        count = sum(1 for ok in deleted if ok)
        log.debug("history.blobs_deleted", extra={"requested": len(unique), "deleted": count})
        return count

    async def purge(self, instance_id: str) -> int:
        """Delete every history row of the instance (sentinel included); returns rows deleted.

        Batches of 100 run up to 10 at a time; a batch that hits 404 (a concurrent purge got
        there first) is retried row by row, skipping rows that are already gone.
        """
        query = f"PartitionKey eq {odata_string(escape_partition_key(instance_id))}"
        keys = [
            {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]}
            async for e in self._table.query_entities(query, select=["PartitionKey", "RowKey"])
        ]
        chunks = [keys[i : i + PURGE_BATCH_SIZE] for i in range(0, len(keys), PURGE_BATCH_SIZE)]
        limiter = asyncio.Semaphore(PURGE_PARALLEL_BATCHES)

        async def run(chunk: list[dict[str, str]]) -> int:
            async with limiter:
                return await self._delete_chunk(chunk)

        deleted = sum(await asyncio.gather(*(run(chunk) for chunk in chunks)))
        log.info("history.purged", extra={"instance_id": instance_id, "rows": deleted})
        return deleted

    async def _delete_chunk(self, chunk: list[dict[str, str]]) -> int:
        try:
            await self._table.submit_transaction([("delete", key) for key in chunk])
            return len(chunk)
        except HttpResponseError as exc:
            if exc.status_code != 404:
                raise
        deleted = 0
        for key in chunk:
            # A one-row transaction, unlike ``delete_entity``, reports 404 instead of hiding it.
            try:
                await self._table.submit_transaction([("delete", key)])
                deleted += 1
            except HttpResponseError as exc:
                if exc.status_code != 404:
                    raise
        return deleted

    # ----------------------------------------------------------------- rewind

    async def rewrite_rows_for_rewind(self, instance_id: str, mark_pending: MarkPending | None = None) -> list[str]:
        """DTAS legacy rewind (see :mod:`.history_rewind`); returns the failed leaf instances."""
        return await rewind_history(self._table, instance_id, mark_pending)


def _batches(entities: Sequence[dict[str, Any]]) -> Iterable[tuple[list[dict[str, Any]], bool]]:
    """Split rows like ``UpdateStateAsync``: 99 rows or an estimate above 3 MiB per batch.

    The flag says whether the batch is the final one (the one that completes the checkpoint).
    """
    batch: list[dict[str, Any]] = []
    estimate = 0
    for index, entity in enumerate(entities):
        batch.append(entity)
        estimate += table_columns.estimate_entity_size(entity)
        is_last = index == len(entities) - 1
        if len(batch) == MAX_EVENTS_PER_TRANSACTION or estimate > MAX_TRANSACTION_ESTIMATE_BYTES or is_last:
            yield batch, is_last
            batch, estimate = [], 0


def _current_generation(entities: Sequence[TableEntity], execution_id: str | None) -> list[TableEntity]:
    rows: list[TableEntity] = []
    for entity in entities:
        if _str_or_none(entity.get(_EXECUTION_ID)) != execution_id:
            break  # the rest is an older, longer generation not yet overwritten
        if entity.get("RowKey") == SENTINEL_ROW_KEY:
            continue
        rows.append(entity)
    return rows


def _etag_of(entity: TableEntity | None) -> str | None:
    if entity is None:
        return None
    metadata: Mapping[str, Any] = entity.metadata
    return _str_or_none(metadata.get("etag"))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _applied_ids(value: object) -> list[str]:
    """The sentinel's applied-message list; anything unreadable counts as empty (never fatal)."""
    if not isinstance(value, str) or not value:
        return []
    try:
        ids = json.loads(value)
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _encode_value(value: Any) -> Any:
    """Row values for the intent blob: JSON, with datetimes tagged (the only non-JSON type)."""
    if isinstance(value, datetime):
        return {"$dt": value.astimezone(timezone.utc).isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$dt"}:
        return datetime.fromisoformat(str(value["$dt"]))
    return value
