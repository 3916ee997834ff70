"""Dashboard operations the management API has no route for: poison, entity views, bulk actions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..aio import TaskHubClient
from ..client import EntityMetadata
from ..errors import DurableAzStorageError, InstanceNotFoundError
from ..model.entities import EntityId
from ..storage.poison_store import PoisonRecord
from ._timeline import iso_ms

__all__ = ["bulk", "entity_detail", "entity_page", "poison_list", "poison_resolve"]

_BODY_PREVIEW = 2000
_STATE_PREVIEW = 160
_BULK_CONCURRENCY = 8


def _poison_json(record: PoisonRecord) -> dict[str, Any]:
    body = record.body if len(record.body) <= _BODY_PREVIEW else record.body[:_BODY_PREVIEW] + "…"
    return {
        "queue": record.queue_name,
        "messageId": record.message_id,
        "instanceId": record.instance_id,
        "eventType": record.event_type,
        "dequeueCount": record.dequeue_count,
        "reason": record.reason,
        "quarantinedAt": iso_ms(record.quarantined_at),
        "body": body,
    }


async def poison_list(client: TaskHubClient, limit: int = 500) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for record in client.storage.poison.list():
        out.append(_poison_json(record))
        if len(out) >= limit:
            break
    return out


async def poison_resolve(client: TaskHubClient, queue: str, message_id: str, *, requeue: bool) -> None:
    """Requeue (put the verbatim body back on its queue) or drop one quarantined message.

    Only this hub's queues are accepted, so a crafted request cannot write elsewhere.
    """
    hub = client.storage
    allowed = {*hub.names.control_queues, hub.names.work_item_queue}
    if queue not in allowed:
        raise ValueError(f"queue {queue!r} is not a queue of task hub {hub.names.task_hub!r}")
    record = await hub.poison.get(queue, message_id)
    if record is None:
        raise InstanceNotFoundError(f"no quarantined message {message_id!r} in queue {queue!r}")
    if requeue:
        await hub.queue_service.get_queue_client(queue).send_message(record.body)
    await hub.poison.remove(queue, message_id)


def _entity_json(m: EntityMetadata, *, preview: bool) -> dict[str, Any]:
    state: Any = m.state
    if preview and state is not None and len(state) > _STATE_PREVIEW:
        state = state[: _STATE_PREVIEW - 1] + "…"
    elif not preview and state is not None:
        state = json.loads(state)
    return {
        "name": m.entity_id.name,
        "key": m.entity_id.key,
        "instanceId": m.entity_id.instance_id,
        "lastOperationTime": iso_ms(m.last_operation_time),
        "lockedBy": m.locked_by,
        "backlogQueueSize": m.backlog_queue_size,
        "exists": m.exists,
        "state": state,
    }


async def entity_page(
    client: TaskHubClient, *, name: str | None, top: int, continuation_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of entities, locked-but-stateless ones included, state cut to a preview."""
    page = await client.list_entities(
        name=name or None,
        include_state=True,
        include_transient=True,
        page_size=top,
        continuation_token=continuation_token,
    )
    return [_entity_json(m, preview=True) for m in page.entities], page.continuation_token


async def entity_detail(client: TaskHubClient, entity_id: EntityId) -> dict[str, Any] | None:
    metadata = await client.get_entity(entity_id, include_state=True, include_transient=True)
    return None if metadata is None else _entity_json(metadata, preview=False)


_BULK: dict[str, Callable[[TaskHubClient, str, str | None], Awaitable[object]]] = {
    "terminate": lambda c, i, reason: c.terminate(i, reason),
    "purge": lambda c, i, _reason: c.purge_instance(i),
    "suspend": lambda c, i, reason: c.suspend(i, reason),
    "resume": lambda c, i, reason: c.resume(i, reason),
}


async def bulk(client: TaskHubClient, action: str, instance_ids: list[str], reason: str | None) -> list[dict[str, Any]]:
    """Apply one action to many instances; each gets its own result (one failure stops nothing)."""
    operation = _BULK.get(action)
    if operation is None:
        raise ValueError(f"unknown bulk action {action!r}; use one of {', '.join(_BULK)}")
    limiter = asyncio.Semaphore(_BULK_CONCURRENCY)

    async def one(instance_id: str) -> dict[str, Any]:
        async with limiter:
            try:
                await operation(client, instance_id, reason)
            except (DurableAzStorageError, ValueError) as exc:
                return {"instanceId": instance_id, "ok": False, "error": str(exc)}
        return {"instanceId": instance_id, "ok": True, "error": None}

    return list(await asyncio.gather(*(one(i) for i in instance_ids)))
