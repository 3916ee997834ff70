"""Quarantine for queue messages that cannot be processed: the ``{Hub}Poison`` table.

DTAS has no poison handling (a bad message is retried every 10 minutes forever). We move
such messages here, with the reason, so a worker never crash-loops and nothing is lost:
``durable-azstorage poison list|requeue|drop`` inspects and resolves them. The table is
an addition to the DTAS layout; .NET workers simply never look at it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from ..codec.odata import odata_string
from ..codec.partitioning import escape_partition_key
from .blobs import LargePayloadStore

__all__ = ["PoisonRecord", "PoisonStore"]

log = logging.getLogger(__name__)

_MAX_INLINE_UTF16_BYTES = 60 * 1024


@dataclass(frozen=True)
class PoisonRecord:
    """One quarantined message and why it was set aside."""

    queue_name: str
    message_id: str
    body: str
    reason: str
    dequeue_count: int
    quarantined_at: datetime
    instance_id: str | None = None
    event_type: str | None = None


class PoisonStore:
    """Read and write quarantined messages; the body is kept verbatim for requeueing."""

    def __init__(self, table: TableClient, payloads: LargePayloadStore) -> None:
        self._table = table
        self._payloads = payloads

    async def quarantine(
        self,
        *,
        queue_name: str,
        message_id: str,
        body: str,
        reason: str,
        dequeue_count: int,
        instance_id: str | None = None,
        event_type: str | None = None,
    ) -> None:
        """Upsert, so quarantining the same message twice (after a crash) is harmless."""
        entity: dict[str, Any] = {
            "PartitionKey": escape_partition_key(queue_name),
            "RowKey": escape_partition_key(message_id),
            "QueueName": queue_name,
            "MessageId": message_id,
            "Reason": reason[:8000],
            "DequeueCount": dequeue_count,
            "QuarantinedAt": datetime.now(timezone.utc),
        }
        if instance_id is not None:
            entity["InstanceId"] = instance_id
        if event_type is not None:
            entity["EventType"] = event_type
        if len(body.encode("utf-16-le")) > _MAX_INLINE_UTF16_BYTES:
            blob_name = f"poison/{queue_name}/{message_id}.json.gz"
            await self._payloads.upload_text(blob_name, body)
            entity["Body"] = ""
            entity["BodyBlobName"] = blob_name
        else:
            entity["Body"] = body
        await self._table.upsert_entity(entity)
        log.error(
            "poison.quarantined",
            extra={"queue": queue_name, "message_id": message_id, "reason": reason, "instance_id": instance_id},
        )

    async def list(self, queue_name: str | None = None) -> AsyncIterator[PoisonRecord]:
        query = f"PartitionKey eq {odata_string(escape_partition_key(queue_name))}" if queue_name else None
        entities = self._table.query_entities(query) if query else self._table.list_entities()
        try:
            async for entity in entities:
                yield await self._to_record(entity)
        except ResourceNotFoundError:
            return

    async def get(self, queue_name: str, message_id: str) -> PoisonRecord | None:
        try:
            entity = await self._table.get_entity(escape_partition_key(queue_name), escape_partition_key(message_id))
        except ResourceNotFoundError:
            return None
        return await self._to_record(entity)

    async def remove(self, queue_name: str, message_id: str) -> None:
        record = await self.get(queue_name, message_id)
        await self._table.delete_entity(escape_partition_key(queue_name), escape_partition_key(message_id))
        if record is not None:
            await self._payloads.delete(f"poison/{queue_name}/{message_id}.json.gz")

    async def _to_record(self, entity: Any) -> PoisonRecord:
        body = str(entity.get("Body") or "")
        blob_name = entity.get("BodyBlobName")
        if blob_name:
            body = await self._payloads.download_text(str(blob_name))
        return PoisonRecord(
            queue_name=str(entity.get("QueueName", "")),
            message_id=str(entity.get("MessageId", "")),
            body=body,
            reason=str(entity.get("Reason", "")),
            dequeue_count=int(entity.get("DequeueCount", 0)),
            quarantined_at=entity.get("QuarantinedAt") or datetime.now(timezone.utc),
            instance_id=entity.get("InstanceId"),
            event_type=entity.get("EventType"),
        )
