"""The async task hub client: pure storage operations, no worker needed.

Every operation is what DTAS's client does on storage (``AzureStorageOrchestrationService``
``CreateTaskOrchestrationAsync``, ``SendTaskOrchestrationMessageAsync`` …): a start
enqueues the ExecutionStarted message *before* writing the Pending Instances row, so a .NET
worker's start de-duplication accepts it; management operations are control messages with
no execution id, processed by whichever worker owns the instance's partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ..codec.names import validate_instance_id
from ..codec.partitioning import escape_partition_key
from ..codec.queue_codec import MessageData
from ..connection import StorageAccount
from ..errors import InstanceAlreadyExistsError, InstanceNotFoundError, InvalidInstanceStateError
from ..model import (
    EventRaisedEvent,
    ExecutionResumedEvent,
    ExecutionStartedEvent,
    ExecutionSuspendedEvent,
    ExecutionTerminatedEvent,
    GenericEvent,
    HistoryEvent,
    InstanceQuery,
    OrchestrationInstance,
    OrchestrationState,
    OrchestrationStatus,
    TaskMessage,
    utc_now,
)
from ..model.status import RUNNING_STATUSES, TERMINAL_STATUSES
from ..storage import PoisonRecord, TaskHubResources, TaskHubStorage
from ..storage.queues import next_sequence_number
from ..telemetry import metrics as otel_metrics
from ..telemetry import tracing
from ._entities import EntityClientMixin
from ._payloads import management_urls

__all__ = ["DEFAULT_DEDUPE_STATUSES", "InstancePage", "PurgeResult", "TaskHubClient", "to_json"]

log = logging.getLogger(__name__)

#: Starting an id whose instance is in one of these states is refused (Durable Functions'
#: default): a running instance is never silently overwritten.
DEFAULT_DEDUPE_STATUSES = frozenset(
    {OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended}
)
_CLIENT_SENDER = OrchestrationInstance(instance_id="", execution_id="")
_PURGE_CONCURRENCY = 8


@dataclass(frozen=True)
class InstancePage:
    """One page of a query and the token for the next one (None when there are no more)."""

    instances: list[OrchestrationState]
    continuation_token: str | None


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed: Instances rows and History rows (``func durable purge-history``)."""

    instances_deleted: int
    rows_deleted: int


def _name(status: OrchestrationStatus | None) -> str:
    """A status for a message; ``Running`` is 0, so only ``is None`` means unknown."""
    return "Unknown" if status is None else status.name


def to_json(value: Any) -> str | None:
    """Payloads are stored as JSON text; None stays None (no input)."""
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class TaskHubClient(EntityClientMixin):
    """Start, inspect and manage orchestration instances (and entities) of one task hub.

    Create with :meth:`from_connection_string` or :meth:`open`; use ``async with`` so the
    HTTP sessions close.
    """

    def __init__(self, hub: TaskHubStorage) -> None:
        self._hub = hub

    @classmethod
    async def open(cls, account: StorageAccount, task_hub_name: str) -> TaskHubClient:
        return cls(await TaskHubStorage.discover(otel_metrics.instrument_account(account), task_hub_name))

    @classmethod
    async def from_connection_string(cls, connection_string: str, task_hub_name: str) -> TaskHubClient:
        return await cls.open(StorageAccount.from_connection_string(connection_string), task_hub_name)

    @property
    def task_hub_name(self) -> str:
        return self._hub.names.task_hub

    @property
    def storage(self) -> TaskHubStorage:
        """The hub's stores, for tools that read beyond the client API (dashboard, doctor)."""
        return self._hub

    @property
    def account(self) -> StorageAccount:
        return self._hub.account

    async def close(self) -> None:
        await self._hub.close()

    async def __aenter__(self) -> TaskHubClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def create_task_hub(self) -> None:
        """Create the hub's tables, queues and containers where missing (idempotent), as a host does."""
        await TaskHubResources(self._hub.account, self._hub.names).create()

    async def list_poison_messages(self, queue: str | None = None) -> list[PoisonRecord]:
        """Quarantined messages of the hub (or of one queue), oldest first."""
        return [record async for record in self._hub.poison.list(queue)]

    async def release_poison_message(self, queue: str, message_id: str, *, requeue: bool) -> bool:
        """Put a quarantined message back on its queue (``requeue``) or drop it; False if unknown."""
        record = await self._hub.poison.get(queue, message_id)
        if record is None:
            return False
        if requeue:
            await self._hub.queue_service.get_queue_client(queue).send_message(record.body)
        await self._hub.poison.remove(queue, message_id)
        return True

    async def schedule_new_orchestration(
        self,
        name: str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        tags: dict[str, str] | None = None,
        version: str | None = None,
        dedupe_statuses: Collection[OrchestrationStatus] = DEFAULT_DEDUPE_STATUSES,
        raw_input: str | None = None,
    ) -> str:
        """Start an orchestration; returns its instance id.

        ``input`` is JSON-serialised; pass ``raw_input`` to store JSON text as-is. An existing
        instance whose status is in ``dedupe_statuses`` makes this raise
        :class:`InstanceAlreadyExistsError`; any other existing instance is replaced by a new
        execution (generation + 1), as DTAS does.
        """
        if not name:
            raise ValueError("orchestration name must not be empty")
        generated = not instance_id
        instance_id = validate_instance_id(instance_id or uuid.uuid4().hex, for_new_orchestration=True)
        # A fresh random id cannot exist yet: skip the read (one transaction per start).
        existing = None if generated else await self._hub.instances.get(
            instance_id, fetch_input=False, fetch_output=False
        )
        if existing is not None and existing.state.runtime_status in dedupe_statuses:
            raise InstanceAlreadyExistsError(
                f"an orchestration with instance id {instance_id!r} already exists "
                f"(status {_name(existing.state.runtime_status)})"
            )
        generation = 0 if existing is None else (existing.state.generation or 0) + 1
        started = ExecutionStartedEvent(
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=uuid.uuid4().hex),
            name=name,
            version=version,
            input=raw_input if raw_input is not None else to_json(input),
            tags=tags,
            scheduled_start_time=start_at.astimezone(timezone.utc) if start_at else None,
            generation=generation,
        )
        attributes = {"durabletask.type": "orchestration", "durabletask.task.name": name,
                      "durabletask.task.instance_id": instance_id}
        with tracing.producer_span("create_orchestration", name, attributes) as trace_context:
            started.parent_trace_context = trace_context

            async def write_row(blob_name: str | None) -> bool:
                return await self._hub.instances.create_pending(
                    started,
                    etag=None if existing is None else existing.etag,
                    input_blob_url=None if blob_name is None else self._hub.payloads.url_for(blob_name),
                )

            # DTAS order: the message, then the row; a worker in this process gets the start
            # in memory only once the row exists (TaskHubQueue.send_then).
            queue = self._hub.control_queue_for(instance_id)
            _, written = await queue.send_then(self._message(started, started.orchestration_instance), write_row)  # type: ignore[arg-type]
        if not written:
            await self._explain_lost_row_race(instance_id, started)
        log.info("client.orchestration_scheduled", extra={"instance_id": instance_id, "orchestration": name})
        return instance_id

    async def _explain_lost_row_race(self, instance_id: str, started: ExecutionStartedEvent) -> None:
        """The Pending row was not written: say whether that is normal or a real race.

        Usually a worker picked the start message up before the row was written and wrote its own
        row first — the DTAS race, harmless (debug). Only a row of *another* execution means a
        second start of the same id won (warning).
        """
        record = await self._hub.instances.get(instance_id, fetch_input=False, fetch_output=False)
        ours = started.orchestration_instance.execution_id if started.orchestration_instance else None
        if record is not None and record.state.execution_id == ours:
            log.debug("client.start_row_written_by_worker", extra={"instance_id": instance_id})
        else:
            log.warning("client.start_race_lost", extra={"instance_id": instance_id})

    async def get_orchestration_state(
        self, instance_id: str, *, fetch_payloads: bool = True
    ) -> OrchestrationState | None:
        """The Instances row of the latest execution, or None when the id is unknown."""
        record = await self._hub.instances.get(instance_id, fetch_input=fetch_payloads, fetch_output=fetch_payloads)
        return None if record is None else record.state

    async def _require(self, instance_id: str) -> OrchestrationState:
        state = await self.get_orchestration_state(instance_id, fetch_payloads=False)
        if state is None:
            raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
        return state

    async def raise_event(
        self, instance_id: str, event_name: str, data: Any = None, *, raw_data: str | None = None
    ) -> None:
        """Deliver an external event; raises for unknown or finished instances (HTTP 404/410)."""
        state = await self._require(instance_id)
        if state.runtime_status is not None and state.runtime_status.is_terminal:
            raise InvalidInstanceStateError(
                f"instance {instance_id!r} is {state.runtime_status.name}; it can no longer receive events"
            )
        event = EventRaisedEvent(name=event_name, input=raw_data if raw_data is not None else to_json(data))
        with tracing.event_raised_span(event, instance_id):
            await self._send(event, OrchestrationInstance(instance_id=instance_id))

    async def terminate(self, instance_id: str, reason: Any = None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status is not None and state.runtime_status.is_terminal:
            raise InvalidInstanceStateError(f"instance {instance_id!r} is already {state.runtime_status.name}")
        await self._send(
            ExecutionTerminatedEvent(input=to_json(reason)), OrchestrationInstance(instance_id=instance_id)
        )

    async def suspend(self, instance_id: str, reason: str | None = None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status not in (OrchestrationStatus.Running, OrchestrationStatus.Pending):
            status = _name(state.runtime_status)
            raise InvalidInstanceStateError(f"instance {instance_id!r} is {status}; only running ones can be suspended")
        await self._send(ExecutionSuspendedEvent(reason=reason), OrchestrationInstance(instance_id=instance_id))

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        state = await self._require(instance_id)
        if state.runtime_status is not OrchestrationStatus.Suspended:
            status = _name(state.runtime_status)
            raise InvalidInstanceStateError(f"instance {instance_id!r} is {status}; only suspended ones can be resumed")
        await self._send(ExecutionResumedEvent(reason=reason), OrchestrationInstance(instance_id=instance_id))

    async def wait_for_completion(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        fetch_payloads: bool = True,
        on_poll: Callable[[OrchestrationState | None], None] | None = None,
    ) -> OrchestrationState:
        """Wait until the instance is Completed, Failed, Terminated or Canceled.

        Polls the Instances row with back-off from 0.1 s to 2 s (DTAS polls every 2 s), so a
        quick orchestration is seen quickly and a slow one costs little; a worker in this
        process that writes the row ends the pause at once (storage/instance_signals.py).
        ``on_poll`` sees each state read (a CLI shows it as progress).
        """
        await self._require(instance_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.1
        with self._hub.instances.watch(instance_id) as written:
            while True:
                written.clear()
                state = await self.get_orchestration_state(instance_id, fetch_payloads=fetch_payloads)
                if on_poll is not None:
                    on_poll(state)
                if state is not None and state.runtime_status not in RUNNING_STATUSES:
                    return state
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError(f"instance {instance_id!r} did not complete within {timeout} s")
                pause = delay if deadline is None else min(delay, max(0.0, deadline - loop.time()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(written.wait(), pause)
                delay = min(delay * 1.5, 2.0)

    def create_http_management_payload(
        self, instance_id: str, base_url: str, *, connection: str = "Storage", code: str | None = None
    ) -> dict[str, str]:
        """The ``CreateCheckStatusResponse`` body for an instance served at ``base_url``."""
        return management_urls(instance_id, base_url, task_hub=self.task_hub_name, connection=connection, code=code)

    # ------------------------------------------------------------------ queries

    async def get_orchestration_history(self, instance_id: str) -> list[HistoryEvent]:
        """The current execution's history events, oldest first (``GetOrchestrationHistoryAsync``)."""
        await self._require(instance_id)
        loaded = await self._hub.history.load(instance_id)
        return list(loaded.events)

    async def query_instances(
        self, query: InstanceQuery | None = None, *, continuation_token: str | None = None, **filters: Any
    ) -> InstancePage:
        """One page of instances; a page may be short (even empty) while a token is returned.

        Pass an :class:`InstanceQuery`, or its fields as keywords (``runtime_status=[...]``,
        ``created_from``, ``created_to``, ``instance_id_prefix``, ``page_size``, ``fetch_payloads``).
        Raises ``ValueError`` for a malformed continuation token or a page size outside 1..1000.
        """
        states, token = await self._hub.instances.query(query or InstanceQuery.of(**filters), continuation_token)
        return InstancePage(states, token)

    async def list_instances(
        self, query: InstanceQuery | None = None, **filters: Any
    ) -> AsyncIterator[OrchestrationState]:
        """Every matching instance, following continuation tokens."""
        async for state in self._hub.instances.query_all(query or InstanceQuery.of(**filters)):
            yield state

    # ------------------------------------------------------------------ purge

    async def purge_instance(self, instance_id: str) -> PurgeResult:
        """Delete the instance's history rows, large-message blobs and Instances row.

        Like DTAS this purges regardless of status (queue messages are not touched); raises
        :class:`InstanceNotFoundError` when there is no Instances row.
        """
        await self._require(instance_id)
        return await self._purge_one(instance_id)

    async def _purge_one(self, instance_id: str) -> PurgeResult:
        results = await asyncio.gather(
            self._hub.history.purge(instance_id),
            self._hub.payloads.delete_instance_blobs(instance_id, escape_partition_key(instance_id)),
        )
        await self._hub.instances.delete(instance_id)
        log.info("client.instance_purged", extra={"instance_id": instance_id, "rows": results[0]})
        return PurgeResult(instances_deleted=1, rows_deleted=results[0])

    async def purge_instances(
        self,
        *,
        created_from: datetime,
        created_to: datetime | None = None,
        runtime_status: Collection[OrchestrationStatus] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> PurgeResult:
        """Purge every instance created in the range whose status is terminal.

        Non-terminal statuses in ``runtime_status`` are ignored; when none is left (or none
        was given) all terminal statuses are purged. Unlike DTAS, a filter like ``[Running]``
        never widens to "everything": running instances are never purged. ``progress`` is
        called with the number purged so far.
        """
        statuses = [s for s in (runtime_status or TERMINAL_STATUSES) if s in TERMINAL_STATUSES]
        if not statuses:
            return PurgeResult(0, 0)
        limiter = asyncio.Semaphore(_PURGE_CONCURRENCY)
        done = PurgeResult(0, 0)
        tasks: list[asyncio.Task[PurgeResult]] = []

        async def purge(instance_id: str) -> PurgeResult:
            nonlocal done
            async with limiter:
                result = await self._purge_one(instance_id)
            done = PurgeResult(done.instances_deleted + 1, done.rows_deleted + result.rows_deleted)
            if progress is not None:
                progress(done.instances_deleted)
            return result

        query = InstanceQuery.of(
            runtime_status=statuses, created_from=created_from, created_to=created_to or utc_now(), fetch_payloads=False
        )
        async for state in self.list_instances(query):
            tasks.append(asyncio.create_task(purge(state.instance_id)))
        await asyncio.gather(*tasks)
        return done

    # ------------------------------------------------------------------ restart / rewind

    async def restart(self, instance_id: str, *, new_instance_id: bool = False) -> str:
        """Start the instance's orchestration again with its original input; returns the id.

        With the same id the previous execution is replaced (a running one is refused with
        :class:`InstanceAlreadyExistsError`), as Durable Functions' ``RestartAsync`` does.
        """
        record = await self._hub.instances.get(instance_id, fetch_input=True, fetch_output=False)
        if record is None:
            raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
        state = record.state
        if not state.name:
            raise InvalidInstanceStateError(f"instance {instance_id!r} has no orchestration name to restart")
        return await self.schedule_new_orchestration(
            state.name,
            raw_input=state.input,
            instance_id=None if new_instance_id else instance_id,
            version=state.version,
        )

    async def rewind(self, instance_id: str, reason: str | None = None) -> list[str]:
        """DTAS legacy rewind of a Failed instance (``RewindTaskOrchestrationAsync``).

        Failure rows of the latest execution (and of failed sub-orchestrations, recursively)
        become ``GenericEvent`` rows, the rows are set Pending, and each failed leaf gets a
        ``GenericEvent`` message that makes a worker replay it and re-run the failed work.
        Returns the leaves that were sent the message.
        """
        state = await self._require(instance_id)
        if state.runtime_status is not OrchestrationStatus.Failed:
            status = _name(state.runtime_status)
            raise InvalidInstanceStateError(
                f"instance {instance_id!r} is {status}; it must have a status of 'Failed' to be rewound"
            )
        leaves = await self._hub.history.rewrite_rows_for_rewind(
            instance_id, mark_pending=self._hub.instances.set_pending_for_rewind
        )
        for leaf in leaves:
            await self._send(GenericEvent(data=reason or ""), OrchestrationInstance(instance_id=leaf))
        log.info("client.instance_rewound", extra={"instance_id": instance_id, "leaves": leaves})
        return leaves

    @staticmethod
    def _message(event: HistoryEvent, instance: OrchestrationInstance) -> MessageData:
        return MessageData(
            activity_id=uuid.uuid4(),
            task_message=TaskMessage(event=event, orchestration_instance=instance),
            sequence_number=next_sequence_number(),
            sender=_CLIENT_SENDER,
        )

    async def _send(self, event: HistoryEvent, instance: OrchestrationInstance, *, local: bool = True) -> str | None:
        """Enqueue a client message to the instance's control queue; returns a blob URL if offloaded."""
        message = self._message(event, instance)
        queue = self._hub.control_queue_for(instance.instance_id)
        blob_name = await queue.send(message, local=local)  # a scheduled start stays invisible until due
        return None if blob_name is None else self._hub.payloads.url_for(blob_name)
