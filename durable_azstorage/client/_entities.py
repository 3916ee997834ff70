"""Entity operations of the task hub client (DTAS ``EntityTrackingStoreQueries``, Core
``ClientEntityHelpers``): signal, read, list and clean up entities, straight on storage.

* A signal is an ``EventRaised`` named ``op`` (``op@<due>`` when scheduled) with a Core
  ``RequestMessage`` and no parent, sent to the entity's control queue; the queue keeps a
  scheduled one invisible until it is due (at most 6 days ahead, DTAS' signal delay cap).
* Reads use the entity's Instances row: ``Input`` is the scheduler state (the user state is
  inside it), ``CustomStatus`` the entity status, ``CreatedTime`` the last operation time.
* Clean-up removes entities that have no state, no queue and no lock (older than the reorder
  window, so the sorter's memory is not cut short) and sends ``release`` for locks whose owner
  is no longer running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..codec import entity_codec, instance_codec
from ..codec.partitioning import escape_partition_key
from ..codec.queue_codec import MessageData
from ..errors import LargePayloadError
from ..model import (
    EventRaisedEvent,
    InstanceQuery,
    OrchestrationInstance,
    OrchestrationState,
    OrchestrationStatus,
    TaskMessage,
)
from ..model import utc_now as _utc_now
from ..model.entities import (
    RELEASE_EVENT_NAME,
    REQUEST_EVENT_NAME,
    EntityId,
    ReleaseMessage,
    RequestMessage,
    scheduled_request_event_name,
    ticks_from_datetime,
)
from ..storage.queues import next_sequence_number
from ..telemetry import entity_tracing

if TYPE_CHECKING:
    from ..storage import TaskHubStorage

__all__ = [
    "CleanEntityStorageResult",
    "EntityClientMixin",
    "EntityMetadata",
    "EntityPage",
    "SyncEntityClientMixin",
    "entity_id_of",
]

log = logging.getLogger(__name__)

MAX_SIGNAL_DELAY = timedelta(days=6)
DEFAULT_REORDER_WINDOW = timedelta(minutes=30)
_CLEAN_TIME_LIMIT = 5.0  # seconds per call, as DTAS; the token continues
_CLIENT_SENDER = OrchestrationInstance(instance_id="", execution_id="")
_STALE_BLOB_RETRIES = 5


@dataclass(frozen=True)
class EntityMetadata:
    """One entity as a query sees it (Core ``EntityMetadata``); ``state`` is JSON text or None."""

    entity_id: EntityId
    last_operation_time: datetime | None
    backlog_queue_size: int = 0
    locked_by: str | None = None
    state: str | None = None

    @property
    def exists(self) -> bool:
        return self.state is not None

    def state_value(self) -> Any:
        """The state as a Python value (``json.loads``); None when there is no state."""
        return None if self.state is None else json.loads(self.state)


@dataclass(frozen=True)
class EntityPage:
    entities: list[EntityMetadata]
    continuation_token: str | None


@dataclass(frozen=True)
class CleanEntityStorageResult:
    empty_entities_removed: int
    orphaned_locks_released: int
    continuation_token: str | None


def entity_id_of(entity: EntityId | str, key: str | None = None) -> EntityId:
    """Accepts an EntityId, ``"@name@key"``, or a name plus ``key`` (the name is lower-cased)."""
    if isinstance(entity, EntityId):
        return entity
    if key is not None:
        return EntityId.of(entity, key)
    parsed = EntityId.parse(entity)
    return EntityId.of(parsed.name, parsed.key)


class EntityClientMixin:
    """Mixed into the async ``TaskHubClient`` (which provides ``_hub``)."""

    _hub: TaskHubStorage

    async def signal_entity(
        self,
        entity: EntityId | str,
        operation: str,
        input: Any = None,
        *,
        key: str | None = None,
        raw_input: str | None = None,
        signal_time: datetime | None = None,
    ) -> str:
        """One-way operation on an entity (created on first use); returns the request id.

        ``input`` is JSON-serialised (``raw_input`` is JSON text as-is). ``signal_time`` delays
        delivery; it is capped at 6 days ahead as in DTAS (the request keeps the original time,
        and the entity re-schedules itself until then).
        """
        entity_id = entity_id_of(entity, key)
        scheduled = signal_time.astimezone(timezone.utc) if signal_time is not None else None
        request = RequestMessage(
            id=str(uuid.uuid4()),
            operation=operation,
            is_signal=True,
            input=raw_input if raw_input is not None else (None if input is None else json.dumps(input)),
            scheduled_time=scheduled,
        )
        name = REQUEST_EVENT_NAME
        if scheduled is not None:
            capped = min(scheduled, _utc_now() + MAX_SIGNAL_DELAY)
            name = scheduled_request_event_name(ticks_from_datetime(capped))
        with entity_tracing.signal_span(entity_id.name, operation, entity_id.instance_id) as traceparent:
            entity_tracing.stamp_request(request, traceparent)
            await self._send_entity_event(entity_id.instance_id, name, entity_codec.encode_request(request))
        log.info("client.entity_signaled", extra={"instance_id": entity_id.instance_id, "operation": operation})
        return request.id

    async def _send_entity_event(self, instance_id: str, name: str, payload: str) -> None:
        message = MessageData(
            activity_id=uuid.uuid4(),
            task_message=TaskMessage(
                event=EventRaisedEvent(name=name, input=payload),
                orchestration_instance=OrchestrationInstance(instance_id=instance_id),
            ),
            sequence_number=next_sequence_number(),
            sender=_CLIENT_SENDER,
        )
        await self._hub.control_queue_for(instance_id).send(message)

    async def get_entity(
        self,
        entity: EntityId | str,
        *,
        key: str | None = None,
        include_state: bool = True,
        include_transient: bool = False,
    ) -> EntityMetadata | None:
        """The entity, or None when it has no state (never signalled, or deleted).

        ``include_transient`` also returns an entity without state that is locked or has queued
        operations (as the Core entity query does).
        """
        entity_id = entity_id_of(entity, key)
        state = await self._read_row(entity_id.instance_id, include_state)
        if state is None:
            return None
        return _metadata(state, include_state=include_state, include_transient=include_transient)

    async def _read_row(self, instance_id: str, include_state: bool) -> OrchestrationState | None:
        """The entity's row with its scheduler state resolved.

        A large scheduler state lives in a blob that the entity's *next* checkpoint replaces
        (and deletes once the row points to the new one); a read that loses this race sees the
        old URL with no blob behind it and simply reads the row again.
        """
        for attempt in range(_STALE_BLOB_RETRIES):
            record = await self._hub.instances.get(instance_id, fetch_input=include_state, fetch_output=False)
            if record is None:
                return None
            if not (include_state and record.state.input and instance_codec.is_blob_url(record.state.input)):
                return record.state
            await asyncio.sleep(0.05 * (attempt + 1))
        raise LargePayloadError(f"the state blob of entity {instance_id!r} keeps disappearing; try again")

    async def _fresh(self, state: OrchestrationState) -> OrchestrationState:
        if state.input and instance_codec.is_blob_url(state.input):
            reread = await self._read_row(state.orchestration_instance.instance_id, True)
            return reread if reread is not None else state
        return state

    async def read_entity_state(self, entity: EntityId | str, *, key: str | None = None) -> tuple[bool, Any]:
        """``(exists, state)`` like azure-functions-durable's ``read_entity_state``."""
        metadata = await self.get_entity(entity, key=key)
        return (False, None) if metadata is None else (True, metadata.state_value())

    async def list_entities(
        self,
        *,
        name: str | None = None,
        instance_id_starts_with: str | None = None,
        last_operation_from: datetime | None = None,
        last_operation_to: datetime | None = None,
        include_state: bool = True,
        include_transient: bool = False,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> EntityPage:
        """One page of entities (DTAS ``QueryEntitiesAsync``); follow ``continuation_token``.

        ``name`` selects one entity type (``@name@`` prefix); ``instance_id_starts_with`` is
        the raw prefix (``@`` added if missing). A page may be short, even empty, while a token
        is still returned; empty pages are skipped for up to 100 ms as DTAS does.
        """
        prefix = f"@{name.lower()}@" if name else (instance_id_starts_with or "@")
        if not prefix.startswith("@"):
            prefix = f"@{prefix}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        token = continuation_token
        while True:
            query = InstanceQuery.of(
                instance_id_prefix=prefix,
                created_from=last_operation_from,
                created_to=last_operation_to,
                fetch_input=include_state,
                fetch_output=False,
                page_size=page_size,
            )
            states, token = await self._hub.instances.query(query, token)
            if include_state:
                states = [await self._fresh(s) for s in states]
            found = [
                m
                for m in (
                    _metadata(s, include_state=include_state, include_transient=include_transient) for s in states
                )
                if m is not None
            ]
            if found or token is None or loop.time() - started > 0.1:
                return EntityPage(found, token)

    async def clean_entity_storage(
        self,
        *,
        remove_empty_entities: bool = True,
        release_orphaned_locks: bool = True,
        continuation_token: str | None = None,
        reorder_window: timedelta = DEFAULT_REORDER_WINDOW,
    ) -> CleanEntityStorageResult:
        """DTAS ``CleanEntityStorageAsync``: runs about 5 s, then returns a token to continue."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        removed = released = 0
        token = continuation_token
        now = _utc_now()
        while True:
            query = InstanceQuery.of(instance_id_prefix="@", fetch_input=False, fetch_output=False)
            states, token = await self._hub.instances.query(query, token)
            jobs: list[Any] = []
            for state in states:
                status = entity_codec.decode_entity_status(state.custom_status)
                if status is None:
                    continue
                instance_id = state.orchestration_instance.instance_id
                if release_orphaned_locks and status.locked_by is not None:
                    jobs.append(self._release_if_orphaned(instance_id, status.locked_by))
                empty = not status.entity_exists and status.locked_by is None and status.queue_size == 0
                old = state.last_updated_time is None or now - state.last_updated_time > reorder_window
                if remove_empty_entities and empty and old:
                    jobs.append(self._remove_entity(instance_id))
            outcomes = await asyncio.gather(*jobs)
            removed += sum(1 for o in outcomes if o == "removed")
            released += sum(1 for o in outcomes if o == "released")
            if token is None or loop.time() - started > _CLEAN_TIME_LIMIT:
                return CleanEntityStorageResult(removed, released, token)

    async def _release_if_orphaned(self, instance_id: str, owner: str) -> str | None:
        record = await self._hub.instances.get(owner, fetch_input=False, fetch_output=False)
        running = record is not None and record.state.runtime_status in (
            OrchestrationStatus.Running,
            OrchestrationStatus.Suspended,
        )
        if running:
            return None
        payload = entity_codec.encode_release(ReleaseMessage(parent_instance_id=owner, id="fix-orphaned-lock"))
        await self._send_entity_event(instance_id, RELEASE_EVENT_NAME, payload)
        log.info("client.entity_lock_released", extra={"instance_id": instance_id, "owner": owner})
        return "released"

    async def _remove_entity(self, instance_id: str) -> str:
        await self._hub.history.purge(instance_id)
        await self._hub.payloads.delete_instance_blobs(instance_id, escape_partition_key(instance_id))
        await self._hub.instances.delete(instance_id)
        log.info("client.entity_removed", extra={"instance_id": instance_id})
        return "removed"


def _metadata(state: OrchestrationState, *, include_state: bool, include_transient: bool) -> EntityMetadata | None:
    """Core ``GetEntityMetadataAsync``: None for entities without state unless transient ones are asked for."""
    instance_id = state.orchestration_instance.instance_id
    try:
        entity_id = EntityId.parse(instance_id)
    except ValueError:
        return None
    status = entity_codec.decode_entity_status(state.custom_status)
    user_state: str | None = None
    if include_state:
        user_state = entity_codec.user_state_of(state.input)
        if user_state is None and not include_transient:
            return None
    elif not include_transient and not (status is not None and status.entity_exists):
        return None
    return EntityMetadata(
        entity_id=entity_id,
        last_operation_time=state.created_time,
        backlog_queue_size=status.queue_size if status else 0,
        locked_by=status.locked_by if status else None,
        state=user_state,
    )


class SyncEntityClientMixin:
    """The same entity operations for the sync ``TaskHubClient`` (which provides ``aio``/``_run``)."""

    if TYPE_CHECKING:
        from collections.abc import Coroutine
        from typing import TypeVar

        _T = TypeVar("_T")

        @property
        def aio(self) -> EntityClientMixin: ...

        def _run(self, coro: Coroutine[Any, Any, _T]) -> _T: ...

    def signal_entity(
        self,
        entity: EntityId | str,
        operation: str,
        input: Any = None,
        *,
        key: str | None = None,
        raw_input: str | None = None,
        signal_time: datetime | None = None,
    ) -> str:
        return self._run(
            self.aio.signal_entity(entity, operation, input, key=key, raw_input=raw_input, signal_time=signal_time)
        )

    def get_entity(
        self,
        entity: EntityId | str,
        *,
        key: str | None = None,
        include_state: bool = True,
        include_transient: bool = False,
    ) -> EntityMetadata | None:
        return self._run(
            self.aio.get_entity(entity, key=key, include_state=include_state, include_transient=include_transient)
        )

    def read_entity_state(self, entity: EntityId | str, *, key: str | None = None) -> tuple[bool, Any]:
        return self._run(self.aio.read_entity_state(entity, key=key))

    def list_entities(
        self,
        *,
        name: str | None = None,
        instance_id_starts_with: str | None = None,
        last_operation_from: datetime | None = None,
        last_operation_to: datetime | None = None,
        include_state: bool = True,
        include_transient: bool = False,
        page_size: int = 100,
        continuation_token: str | None = None,
    ) -> EntityPage:
        return self._run(
            self.aio.list_entities(
                name=name,
                instance_id_starts_with=instance_id_starts_with,
                last_operation_from=last_operation_from,
                last_operation_to=last_operation_to,
                include_state=include_state,
                include_transient=include_transient,
                page_size=page_size,
                continuation_token=continuation_token,
            )
        )

    def clean_entity_storage(
        self,
        *,
        remove_empty_entities: bool = True,
        release_orphaned_locks: bool = True,
        continuation_token: str | None = None,
    ) -> CleanEntityStorageResult:
        return self._run(
            self.aio.clean_entity_storage(
                remove_empty_entities=remove_empty_entities,
                release_orphaned_locks=release_orphaned_locks,
                continuation_token=continuation_token,
            )
        )
