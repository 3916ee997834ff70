"""Durable entities on the control path: one batch of operations per entity per episode.

An entity (``@name@key``) is an orchestration instance to storage. Each episode follows Core's
``TaskEntityDispatcher``:

1. the scheduler state is the input of the stored ExecutionStarted (none yet: auto-start);
2. inbound ``op`` requests pass the message sorter (per-sender order and de-duplication) and
   join the queue, lock-holder requests first; ``release`` frees the lock; ``op@<due>`` that
   is still early goes back to the queue as a delayed self-message;
3. up to ``max_entity_operation_batch_size`` queued operations run as one batch, stopping at
   a lock request (which is granted after them: the lock travels to the next entity of the
   sorted lock set, or the caller is told it holds all locks); leftovers get a ``continue``
   self-message;
4. the checkpoint is the DTAS order: send responses and signals → rewrite the history as
   ``OrchestratorStarted, ExecutionStarted(input=scheduler state, new execution id),
   OrchestratorCompleted`` under the sentinel eTag → Instances row (custom status = entity
   status) → delete the inbound messages.

A crash before step 4's history write re-runs the batch (callers may see a response twice,
which they ignore); after it, re-delivered requests from orchestrations are dropped by the
sorter, whose "last delivered" marks were committed with the state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..codec import entity_codec
from ..errors import CheckpointConflictError, FunctionNotRegisteredError, MessageDecodeError
from ..model import (
    EventRaisedEvent,
    EventSentEvent,
    EventType,
    ExecutionStartedEvent,
    FailureDetails,
    HistoryEvent,
    OrchestrationInstance,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    ParentInstance,
    TaskMessage,
    utc_now,
)
from ..model.entities import (
    CONTINUE_EVENT_NAME,
    LOCK_ACQUISITION_COMPLETED,
    REQUEST_EVENT_NAME,
    TICKS_PER_SECOND,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    is_entity_instance,
    is_release_event,
    is_request_event,
    scheduled_request_event_name,
    ticks_from_datetime,
)
from ..runtimes.entities import (
    EntityBatchRequest,
    EntityBatchResult,
    EntityOperation,
    EntityRuntime,
    OperationOutcome,
    SendSignal,
    StartOrchestration,
)
from ..runtimes.rules import FIRE_AND_FORGET_TAG
from ..storage import Checkpoint, TaskHubStorage, commit_checkpoint
from ..storage.queues import QueueMessage
from ..telemetry import entity_tracing
from .applied import already_applied, merged, recordable
from .episode_clock import (
    RECORD_PATIENCE,
    WAIT_TICK,
    Parked,
    RecordedEpisode,
    clock_value,
    episode_ids,
    recorded_episode,
    split_recorded_inputs,
)
from .history_cache import CachedHistory, HistoryCache
from .poison import PoisonHandler

__all__ = ["EntityProcessor", "EntitySettings", "is_early_entity_response"]

log = logging.getLogger(__name__)

MAX_SIGNAL_DELAY = timedelta(days=6)  # DTAS EntityBackendProperties.MaximumSignalDelayTime
_EARLY_TOLERANCE = timedelta(milliseconds=100)  # Core: a due request this close runs now


@dataclass(frozen=True)
class EntitySettings:
    max_batch_size: int = 50
    reorder_window: timedelta = timedelta(minutes=30)  # EntityMessageReorderWindowInMinutes

    @property
    def window_ticks(self) -> int:
        return int(self.reorder_window.total_seconds() * TICKS_PER_SECOND)


@dataclass
class _Outbound:
    """Messages this episode sends, in order: (target instance, event)."""

    ids: Callable[[], str] = lambda: uuid.uuid4().hex
    """Ids of what the batch makes (signals, started orchestrations): follow the batch clock."""
    items: list[tuple[OrchestrationInstance, EventRaisedEvent | ExecutionStartedEvent]] = field(default_factory=list)

    def event(self, target: OrchestrationInstance, name: str, payload: str | None, now: datetime) -> None:
        self.items.append((target, EventRaisedEvent(name=name, input=payload, timestamp=now)))


@dataclass
class _Work:
    operations: list[RequestMessage] = field(default_factory=list)
    lock_request: RequestMessage | None = None
    reschedule: list[RequestMessage] = field(default_factory=list)
    continue_later: bool = False


class EntityProcessor:
    """Runs and checkpoints one batch of control messages addressed to one entity."""

    def __init__(
        self,
        hub: TaskHubStorage,
        runtime: EntityRuntime,
        cache: HistoryCache,
        poison: PoisonHandler,
        settings: EntitySettings | None = None,
    ) -> None:
        self._hub = hub
        self._runtime = runtime
        self._cache = cache
        self._poison = poison
        self._settings = settings or EntitySettings()

    async def process(self, instance_id: str, messages: Sequence[QueueMessage]) -> Parked:
        """One batch; returns the messages to keep held for the entity's next batch (usually none)."""
        try:
            return await self._process(instance_id, list(messages))
        except CheckpointConflictError:
            self._cache.evict(instance_id)
            log.warning("entity.split_brain", extra={"instance_id": instance_id})
            await self._poison.abandon_all(messages, "entity batch failed repeatedly")
        except Exception:
            self._cache.evict(instance_id)
            log.exception("entity.episode_failed", extra={"instance_id": instance_id})
            await self._poison.abandon_all(messages, "entity batch failed repeatedly")
        return Parked()

    async def _process(self, instance_id: str, messages: list[QueueMessage]) -> Parked:
        """A re-run of a recorded batch (worker/episode_clock.py) runs on exactly its inputs."""
        history = await self._load(instance_id)
        messages = await self._drop_already_applied(instance_id, messages, history)
        if not messages:
            return Parked()
        record = _recorded_batch(instance_id, history)
        extras: list[QueueMessage] = []
        if record is not None:
            split = split_recorded_inputs(messages, record)
            if split is None:
                log.info("entity.rerun_waits_for_inputs", extra={"instance_id": instance_id})
                return Parked(messages, wake_after=WAIT_TICK)
            messages, extras = split
        await self._run_batch(instance_id, messages, history, record)
        return Parked(extras)

    async def _run_batch(
        self, instance_id: str, messages: list[QueueMessage], history: CachedHistory, record: RecordedEpisode | None
    ) -> None:
        started = next((e for e in history.events if isinstance(e, ExecutionStartedEvent)), None)
        events = [m.data.task_message.event for m in messages if m.data and m.data.task_message]
        if not history.events and not any(isinstance(e, (EventRaisedEvent, ExecutionStartedEvent)) for e in events):
            # Core AutoStart needs an EventRaised: anything else for a missing entity is "No such instance".
            log.info("entity.messages_discarded", extra={"instance_id": instance_id, "count": len(messages)})
            await asyncio.gather(*(self._hub.queue(m.queue_name).delete(m) for m in messages))
            return
        if started is None:
            started = next((e for e in events if isinstance(e, ExecutionStartedEvent)), None)
        state = entity_codec.decode_scheduler_state(started.input if started else None)
        now = record.clock if record is not None else utc_now()
        outbound = _Outbound(ids=episode_ids(instance_id, now))
        work = self._determine_work(instance_id, state, events, now)
        if work.operations:
            await self._run_operations(instance_id, state, work, outbound, now)
        if work.lock_request is not None:
            self._grant_lock(state, work.lock_request, outbound, now)
            # The new holder's requests may already be queued (see promote_lock_holder): run them.
            work.continue_later = work.continue_later or state.promote_lock_holder()
        for request in work.reschedule:
            assert request.scheduled_time is not None
            due = min(request.scheduled_time, now + MAX_SIGNAL_DELAY)
            name = scheduled_request_event_name(ticks_from_datetime(due))
            outbound.event(
                OrchestrationInstance(instance_id=instance_id), name, entity_codec.encode_request(request), now
            )
        if work.continue_later:
            outbound.event(OrchestrationInstance(instance_id=instance_id), CONTINUE_EVENT_NAME, None, now)
        applied = merged(history.applied_message_ids, [m.message_id for m in messages if recordable(m)])
        if record is None and any(target.instance_id != instance_id for target, _ in outbound.items):
            # Before anything is sent: a re-run must answer, grant and signal exactly the same.
            committed = history.execution_id or ""
            value = clock_value(committed, len(history.events), now, [m.message_id for m in messages])
            history.etag = await self._hub.history.pin_episode_clock(instance_id, committed, value, history.etag)
        await self._commit(instance_id, started, history, state, outbound, now, applied)
        await asyncio.gather(*(self._hub.queue(m.queue_name).delete(m) for m in messages))

    async def _drop_already_applied(
        self, instance_id: str, messages: list[QueueMessage], history: CachedHistory
    ) -> list[QueueMessage]:
        """Copies of requests whose effect the committed state already holds (worker/applied.py)."""
        copies = already_applied(messages, history.applied_message_ids)
        if not copies:
            return messages
        log.warning("entity.applied_messages_dropped", extra={"instance_id": instance_id, "count": len(copies)})
        await asyncio.gather(*(self._hub.queue(m.queue_name).delete(m) for m in copies))
        dropped = {id(m) for m in copies}
        return [m for m in messages if id(m) not in dropped]

    # ------------------------------------------------------------------ loading
    async def _load(self, instance_id: str) -> CachedHistory:
        cached = self._cache.get(instance_id)
        if cached is not None:
            return cached
        loaded = await self._hub.history.load(instance_id)
        return CachedHistory(
            execution_id=loaded.execution_id,
            events=list(loaded.events),
            etag=loaded.etag,
            blob_names=list(loaded.blob_names),
            applied_message_ids=list(loaded.applied_message_ids),
            episode_clock=loaded.episode_clock,
        )

    # ------------------------------------------------------------------ deciding
    def _determine_work(
        self, instance_id: str, state: SchedulerState, events: Sequence[HistoryEvent], now: datetime
    ) -> _Work:
        """Core ``DetermineWork``: sort inbound requests into the queue, then take a batch."""
        work = _Work()
        lock_holder: list[RequestMessage] = []
        window = self._settings.window_ticks
        for event in events:
            if not isinstance(event, EventRaisedEvent):
                if event.event_type != EventType.ExecutionStarted:
                    log.info("entity.event_ignored", extra={"instance_id": instance_id, "event": event.event_type.name})
                continue
            if is_request_event(event.name):
                request = self._decode_request(instance_id, event)
                if request is None:
                    continue
                if request.scheduled_time is not None:
                    if request.scheduled_time - now > _EARLY_TOLERANCE:
                        work.reschedule.append(request)
                        continue
                    deliver = [request]
                else:
                    deliver = list(state.sorter.receive_in_order(request, window))
                for message in deliver:
                    if state.locked_by is not None and state.locked_by == message.parent_instance_id:
                        lock_holder.append(message)
                    else:
                        state.enqueue(message)
            elif is_release_event(event.name):
                release = entity_codec.decode_release(event.input or "{}")
                if state.locked_by is not None and state.locked_by == release.parent_instance_id:
                    state.locked_by = None
            else:
                state.suspended = False  # "continue" (or anything else) resumes
        if lock_holder:
            state.put_back(lock_holder)
        state.promote_lock_holder()
        if not state.suspended:
            while state.may_dequeue():
                if len(work.operations) >= self._settings.max_batch_size:
                    work.continue_later = True
                    break
                request = state.dequeue()
                if request.is_lock_request:
                    work.lock_request = request
                    break
                work.operations.append(request)
        return work

    @staticmethod
    def _decode_request(instance_id: str, event: EventRaisedEvent) -> RequestMessage | None:
        try:
            request = entity_codec.decode_request(event.input or "")
        except MessageDecodeError as exc:
            # A malformed request can never succeed: drop it rather than poison the entity.
            log.warning("entity.request_malformed", extra={"instance_id": instance_id, "error": str(exc)})
            return None
        if event.parent_trace_context is not None:  # a sender that traced the event, not the request
            entity_tracing.stamp_request(request, event.parent_trace_context.trace_parent)
        return request

    # ------------------------------------------------------------------ running
    async def _run_operations(
        self, instance_id: str, state: SchedulerState, work: _Work, outbound: _Outbound, now: datetime
    ) -> None:
        operations = [
            EntityOperation(operation=r.operation or "", input=r.input, id=r.id, is_signal=r.is_signal,
                            trace_parent=entity_tracing.request_traceparent(r))
            for r in work.operations
        ]
        request = EntityBatchRequest(
            instance_id=instance_id,
            entity_state=state.entity_state if state.entity_exists else None,
            operations=operations,
        )
        started = utc_now()
        try:
            result = await self._runtime.run_batch(request)
        except FunctionNotRegisteredError:
            raise  # retried with back-off (and quarantined eventually), as Core's TypeMissingException
        except Exception as exc:  # a runtime bug: report to every caller, keep the state
            log.exception("entity.runtime_failed", extra={"instance_id": instance_id})
            fd = FailureDetails(error_type=type(exc).__name__, error_message=str(exc))
            result = EntityBatchResult(entity_state=request.entity_state, failure_details=fd)
        outcomes = list(result.results)
        if len(outcomes) < len(operations):
            if result.failure_details is not None:
                failed = OperationOutcome(failure_details=result.failure_details)
                outcomes += [failed] * (len(operations) - len(outcomes))
            else:
                # Not run: back to the front of the queue, after this batch commits.
                deferred = work.operations[len(outcomes) :]
                if work.lock_request is not None:
                    deferred.append(work.lock_request)
                    work.lock_request = None
                del work.operations[len(outcomes) :]
                state.put_back(deferred)
                work.continue_later = True
        if not getattr(self._runtime, "emits_spans", False):  # a gRPC worker emits its own, with our context
            entity_tracing.emit_operation_spans(instance_id, work.operations, outcomes, started, utc_now())
        for message, outcome in zip(work.operations, outcomes, strict=False):
            if not message.is_signal and message.parent_instance_id is not None:
                target = OrchestrationInstance(
                    instance_id=message.parent_instance_id, execution_id=message.parent_execution_id
                )
                outbound.event(target, message.id, entity_codec.encode_response(_response(outcome)), now)
        state.entity_exists = result.entity_state is not None
        state.entity_state = result.entity_state
        for action in result.actions:
            if isinstance(action, SendSignal):
                self._send_signal(instance_id, state, action, outbound, now)
            elif isinstance(action, StartOrchestration):
                outbound.items.append(_start_message(instance_id, action, now, outbound.ids()))

    def _send_signal(
        self, instance_id: str, state: SchedulerState, action: SendSignal, outbound: _Outbound, now: datetime
    ) -> None:
        message = RequestMessage(
            id=str(uuid.UUID(hex=outbound.ids())),
            operation=action.operation,
            is_signal=True,
            input=action.input,
            parent_instance_id=instance_id,
            parent_execution_id=None,  # an entity's sorter outlives its executions
            scheduled_time=action.scheduled_time,
        )
        if action.scheduled_time is not None:
            due = min(action.scheduled_time, now + MAX_SIGNAL_DELAY)
            name = scheduled_request_event_name(ticks_from_datetime(due))
        else:
            name = REQUEST_EVENT_NAME
            state.sorter.label_outgoing(
                message, action.instance_id, ticks_from_datetime(now), self._settings.window_ticks
            )
        outbound.event(
            OrchestrationInstance(instance_id=action.instance_id), name, entity_codec.encode_request(message), now
        )

    def _grant_lock(self, state: SchedulerState, request: RequestMessage, outbound: _Outbound, now: datetime) -> None:
        """Core ``ProcessLockRequest``: lock for the caller, pass the request on or confirm it."""
        assert request.lock_set is not None
        state.locked_by = request.parent_instance_id
        request.position += 1
        if request.position < len(request.lock_set):
            target = str(request.lock_set[request.position])
            state.sorter.label_outgoing(request, target, ticks_from_datetime(now), self._settings.window_ticks)
            payload = entity_codec.encode_request(request)
            outbound.event(OrchestrationInstance(instance_id=target), REQUEST_EVENT_NAME, payload, now)
        elif request.parent_instance_id is not None:
            target_instance = OrchestrationInstance(
                instance_id=request.parent_instance_id, execution_id=request.parent_execution_id
            )
            response = entity_codec.encode_response(ResponseMessage(result=LOCK_ACQUISITION_COMPLETED))
            outbound.event(target_instance, request.id, response, now)

    # ------------------------------------------------------------------ checkpoint
    async def _commit(
        self,
        instance_id: str,
        previous: ExecutionStartedEvent | None,
        history: CachedHistory,
        state: SchedulerState,
        outbound: _Outbound,
        now: datetime,
        applied: list[str],
    ) -> None:
        execution_id = uuid.uuid4().hex
        started = ExecutionStartedEvent(
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
            name=(previous.name if previous and previous.name else instance_id),
            version=(previous.version if previous and previous.version is not None else ""),
            input=entity_codec.encode_scheduler_state(state),
            tags=previous.tags if previous else None,
            parent_instance=previous.parent_instance if previous else None,
            timestamp=now,
        )
        new_events: list[HistoryEvent] = [
            OrchestratorStartedEvent(timestamp=now),
            started,
            OrchestratorCompletedEvent(timestamp=now),
        ]
        result = await commit_checkpoint(
            self._hub,
            Checkpoint(
                instance_id=instance_id,
                execution_id=execution_id,
                new_events=new_events,
                event_count=len(new_events),
                etag=history.etag,
                now=now,
                outbound=[TaskMessage(event=event, orchestration_instance=target) for target, event in outbound.items],
                custom_status=entity_codec.encode_entity_status(state.status()),
                applied_message_ids=applied,
            ),
        )
        if history.blob_names:
            # The previous scheduler state's blob: nothing points to it any more.
            await self._hub.history.delete_blobs(history.blob_names)
        for event in new_events:
            event.is_played = True
        self._cache.put(
            instance_id,
            CachedHistory(
                execution_id=execution_id,
                events=new_events,
                etag=result.etag,
                blob_names=result.offloaded_blob_names,
                applied_message_ids=applied,
            ),
        )
        log.debug(
            "entity.checkpointed",
            extra={"instance_id": instance_id, "queue": len(state.queue or []), "locked_by": state.locked_by},
        )


def _recorded_batch(instance_id: str, history: CachedHistory) -> RecordedEpisode | None:
    record = recorded_episode(history.episode_clock, history.execution_id or "", len(history.events))
    if record is None:
        return None
    if utc_now() - record.clock > RECORD_PATIENCE:
        log.warning("entity.recorded_batch_expired", extra={"instance_id": instance_id})
        return None
    log.warning("entity.batch_clock_reused", extra={"instance_id": instance_id, "clock": record.clock})
    return record


def _response(outcome: OperationOutcome) -> ResponseMessage:
    """Core ``SendResultMessage``: the failure's type in ``exceptionType``, its message in ``result``."""
    fd = outcome.failure_details
    if fd is None:
        return ResponseMessage(result=outcome.result)
    return ResponseMessage(
        result=json.dumps(fd.error_message), error_message=fd.error_type or "Exception", failure_details=fd
    )


def _start_message(
    instance_id: str, action: StartOrchestration, now: datetime, execution_id: str
) -> tuple[OrchestrationInstance, ExecutionStartedEvent]:
    """Core ``ProcessSendStartMessage``: a fire-and-forget child of the entity."""
    target = OrchestrationInstance(instance_id=action.instance_id, execution_id=execution_id)
    event = ExecutionStartedEvent(
        orchestration_instance=target,
        name=action.name,
        version=action.version,
        input=action.input,
        tags={FIRE_AND_FORGET_TAG: ""},
        scheduled_start_time=action.scheduled_start_time,
        parent_instance=ParentInstance(
            name=instance_id,
            orchestration_instance=OrchestrationInstance(instance_id=instance_id),
            task_schedule_id=0,
            version="",
        ),
        timestamp=now,
    )
    return target, event


def is_early_entity_response(message: QueueMessage, target_instance_id: str, history: Sequence[HistoryEvent]) -> bool:
    """DTAS ``IsOutOfOrderMessage`` for entity responses: an EventRaised from an entity to an
    orchestration whose history has no EventSent carrying that request id yet.

    Outbound messages are sent before history is written, so a fast entity can answer before
    the caller's own checkpoint is visible (typically after a partition move). Such a response
    must wait, or the SDK would take it for an unrelated external event.
    """
    data = message.data
    if data is None or data.task_message is None or data.sender is None:
        return False
    event = data.task_message.event
    if not isinstance(event, EventRaisedEvent) or not is_entity_instance(data.sender.instance_id):
        return False
    if is_entity_instance(target_instance_id) or not event.name:
        return False
    return not any(isinstance(e, EventSentEvent) and _request_id(e.input) == event.name for e in history)


def _request_id(payload: str | None) -> str | None:
    if not payload:
        return None
    try:
        return entity_codec.decode_request(payload).id
    except MessageDecodeError:
        return None
