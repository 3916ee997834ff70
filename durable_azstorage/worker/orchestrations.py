"""One orchestration episode per instance batch, checkpointed in the DTAS order.

The order (DTAS ``CompleteTaskOrchestrationWorkItemAsync``; :mod:`durable_azstorage.storage.checkpoint`)
is what makes a crash anywhere safe:
**send outbound messages → history batches guarded by the sentinel eTag → Instances row →
delete inbound messages**. A crash before the history commit replays the episode (outbound
work may run twice: activities are at-least-once); a second writer is stopped by the eTag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..errors import CheckpointConflictError
from ..model import (
    EventType,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationStatus,
    OrchestratorStartedEvent,
    TaskMessage,
    TimerCreatedEvent,
    TimerFiredEvent,
    utc_now,
)
from ..runtimes.attempts import answers_an_earlier_attempt
from ..runtimes.base import OrchestrationRuntime
from ..runtimes.rules import is_out_of_order, runtime_status
from ..runtimes.state import EpisodeOutcome, EpisodePlan, ReplayState
from ..storage import Checkpoint, TaskHubStorage, commit_checkpoint
from ..storage.history_store import HistoryLoad
from ..storage.queues import QueueMessage, abandon_delay
from ..telemetry import entity_tracing, tracing
from ..telemetry import metrics as otel_metrics
from .applied import already_applied, merged, recordable
from .child_starts import is_child_start, repeats_current_start
from .entities import is_early_entity_response
from .episode_clock import (
    RECORD_PATIENCE,
    WAIT_TICK,
    Parked,
    RecordedEpisode,
    clock_value,
    episode_ids,
    recorded_episode,
    sends_entity_requests_with_answers,
)
from .history_cache import CachedHistory, HistoryCache
from .poison import PoisonHandler

__all__ = ["OrchestrationProcessor", "Parked"]

log = logging.getLogger(__name__)

_MAX_OUT_OF_ORDER_FOR_UNKNOWN = 5  # DTAS: after 5 dequeues a response to nothing is discarded
_MAX_START_DEFERRALS = 10  # DTAS duplicate-start detection: a start that never matches its Instances row


@dataclass
class _Batch:
    """The messages of one episode, with the decisions taken about each."""

    messages: list[QueueMessage]
    by_event: dict[int, QueueMessage] = field(default_factory=dict)
    delete: list[QueueMessage] = field(default_factory=list)
    defer: list[tuple[QueueMessage, timedelta | None]] = field(default_factory=list)
    fresh_start: str | None = None
    """Execution id of a first-generation start whose Instances row still says Pending."""
    latest: HistoryLoad | None = None
    """The newest generation, when screening a sub-orchestration start already read it."""
    on_committed: Callable[[Parked], Awaitable[None]] | None = None
    """Called once the checkpoint is written, before the inbound messages are deleted."""
    parked: Parked = field(default_factory=Parked)

    def __post_init__(self) -> None:
        self.by_event = {id(self.event(m)): m for m in self.messages}

    @staticmethod
    def event(message: QueueMessage) -> HistoryEvent:
        assert message.data is not None and message.data.task_message is not None
        return message.data.task_message.event

    def message_of(self, event: HistoryEvent) -> QueueMessage:
        return self.by_event[id(event)]

    def events(self) -> list[HistoryEvent]:
        return [self.event(m) for m in self.unsettled()]

    def unsettled(self) -> list[QueueMessage]:
        consumed = self.settled()
        return [m for m in self.messages if id(m) not in consumed]

    def settled(self) -> set[int]:
        """Messages already decided on: deleted, deferred, or kept for the next batch."""
        return {id(m) for m in self.delete} | {id(m) for m, _ in self.defer} | {id(m) for m in self.parked.messages}


@dataclass(frozen=True)
class _Clock:
    """The episode's clock (worker/episode_clock.py): the first attempt's when it was recorded."""

    now: datetime
    pinned: bool
    ids: Callable[[], str]
    inputs: tuple[str, ...] = ()
    """Ids of the inbound messages the episode ran on, in order (recorded with the clock)."""




class OrchestrationProcessor:
    """Turns one :class:`InstanceBatch` of control messages into one committed episode."""

    def __init__(
        self,
        hub: TaskHubStorage,
        runtime: OrchestrationRuntime,
        cache: HistoryCache,
        poison: PoisonHandler,
    ) -> None:
        self._hub = hub
        self._runtime = runtime
        self._cache = cache
        self._poison = poison

    async def process(
        self,
        instance_id: str,
        messages: Sequence[QueueMessage],
        on_committed: Callable[[Parked], Awaitable[None]] | None = None,
    ) -> Parked:
        """Run and checkpoint one episode; returns the messages to keep held for the next batch.

        ``on_committed`` lets the caller start the instance's next episode as soon as the
        checkpoint is written, while this one still deletes its inbound messages (step 4): the
        next episode works from the committed history, and a message whose delete is lost
        comes back and is recognised as applied, exactly as after a crash at that point.
        """
        batch = _Batch(list(messages), on_committed=on_committed)
        try:
            await self._process(instance_id, batch)
            return batch.parked
        except CheckpointConflictError:
            # Another worker committed this instance: our view is stale. Nothing of ours was
            # written to history; retry later from storage.
            self._cache.evict(instance_id)
            log.warning("orchestration.split_brain", extra={"instance_id": instance_id})
            await self._poison.abandon_all(batch.messages, "episode failed repeatedly")
        except Exception:
            self._cache.evict(instance_id)
            log.exception("orchestration.episode_failed", extra={"instance_id": instance_id})
            await self._poison.abandon_all(batch.messages, "episode failed repeatedly")
        return Parked()

    async def _process(self, instance_id: str, batch: _Batch) -> None:
        await self._screen_starts(instance_id, batch)
        await self._screen_child_starts(instance_id, batch)
        history = await self._load(instance_id, batch)
        self._hold_early_entity_responses(instance_id, batch, history)
        _drop_earlier_attempts(instance_id, batch, history)
        _drop_already_applied(instance_id, batch, history)
        record = self._recorded_episode(instance_id, batch, history)
        if record is not None and not _take_recorded_inputs(instance_id, batch, record):
            await self._settle(batch)
            return  # parked until the rest of the recorded inputs is back
        # A re-run of an episode that sent entity requests keeps its clock and its inputs.
        now = record.clock if record is not None else utc_now()
        inputs = tuple(m.message_id for m in batch.unsettled())
        ids = episode_ids(instance_id, now)
        state = ReplayState(instance_id, history.events, id_factory=ids)
        if history.events and state.status.is_terminal:
            await self._repair_terminal_row(instance_id, history, state)
        plan = state.prepare(batch.events(), now=now)
        await self._classify_leftovers(instance_id, batch, plan, history)
        if plan.request is None and not plan.accepted and not plan.timer_hops:
            await self._finish_without_episode(instance_id, batch, plan)
            return
        started = state.started or next((e for e in plan.accepted if isinstance(e, ExecutionStartedEvent)), None)
        trace_context = None
        remote_spans = getattr(self._runtime, "emits_spans", False)  # the SDK worker emits them with our ids
        if started is not None:
            trace_context = tracing.orchestration_context(started, now)
        result = await self._runtime.run_episode(plan.request) if plan.request is not None else None
        outcome = state.apply(plan, result)
        entity_tracing.stamp_entity_requests(outcome.orchestrator_messages, trace_context)
        if not remote_spans:  # an SDK worker that emits spans chose its own CLIENT contexts
            episode = sum(isinstance(e, OrchestratorStartedEvent) for e in history.events)
            tracing.stamp_scheduling(outcome.history, [*outcome.orchestrator_messages, *outcome.work_item_messages],
                                     trace_context, episode)
        tracing.stamp_outbound([*outcome.work_item_messages, *outcome.orchestrator_messages], trace_context)

        def committed() -> None:
            # The moment the history write succeeds, before the Instances row and the deletes: a
            # crash loses a span only between the commit's answer and the export (microseconds).
            otel_metrics.record_episode(started, outcome)
            if trace_context is not None and started is not None:
                if not remote_spans:
                    _trace_committed(instance_id, started, history.events, outcome)
                # The durabletask SDK worker emits no caller-side entity spans: the host always does.
                entity_tracing.emit_request_spans(
                    instance_id, trace_context, outcome.orchestrator_messages, now, utc_now()
                )

        await self._commit(
            instance_id, batch, history, outcome, _Clock(now, record is not None, ids, inputs), committed
        )

    # ------------------------------------------------------------------ loading
    async def _load(self, instance_id: str, batch: _Batch) -> CachedHistory:
        """History of the execution this batch is for, from the cache when it is current.

        A batch carrying an ExecutionStarted for a *new* execution (recreate) loads with that
        execution id, so the old generation reads as empty but keeps its sentinel eTag.
        """
        start = next((e for e in batch.events() if isinstance(e, ExecutionStartedEvent)), None)
        expected = start.orchestration_instance.execution_id if start and start.orchestration_instance else None
        cached = self._cache.get(instance_id)
        if cached is None and expected is not None and expected == batch.fresh_start:
            # Generation 0 and a Pending row for this execution: the client found no earlier
            # instance, so there is no history to read (one transaction per start). Were there
            # one after all (a partial purge, a crash after the first history write), the
            # sentinel insert of the checkpoint fails with 409 and the episode is retried
            # from a real read — the same path as any other stale history.
            return CachedHistory(execution_id=expected, events=[], etag=None)
        wanted_other = self._mentions_other_execution(batch, cached)
        if (
            cached is not None
            and not wanted_other
            and (expected is None or expected == cached.execution_id)
            # A final history is re-read: a client rewind rewrites its rows in place.
            and not runtime_status(cached.events).is_terminal
        ):
            return cached
        loaded = _as_expected(batch.latest, expected) or await self._hub.history.load(instance_id, expected)
        events = list(loaded.events)
        if loaded.is_checkpoint_complete is False:
            events = _last_complete_episode(events)
            log.warning(
                "orchestration.partial_checkpoint_found",
                extra={"instance_id": instance_id, "kept": len(events), "stored": len(loaded.events)},
            )
        fresh = CachedHistory(
            execution_id=loaded.execution_id if events else expected,
            events=events,
            etag=loaded.etag,
            blob_names=list(loaded.blob_names),
            applied_message_ids=list(loaded.applied_message_ids),
            episode_clock=loaded.episode_clock,
        )
        return fresh

    @staticmethod
    def _mentions_other_execution(batch: _Batch, cached: CachedHistory | None) -> bool:
        if cached is None:
            return True
        for message in batch.messages:
            tm = message.data.task_message if message.data else None
            execution = tm.orchestration_instance.execution_id if tm else None
            if execution and execution != cached.execution_id:
                return True
        return False

    @staticmethod
    def _recorded_episode(instance_id: str, batch: _Batch, history: CachedHistory) -> RecordedEpisode | None:
        record = recorded_episode(history.episode_clock, history.execution_id, len(history.events))
        if record is None:
            return None
        if utc_now() - record.clock > RECORD_PATIENCE:
            log.warning("orchestration.recorded_episode_expired", extra={"instance_id": instance_id})
            return None
        log.warning("orchestration.episode_clock_reused", extra={"instance_id": instance_id, "clock": record.clock})
        return record

    async def _repair_terminal_row(self, instance_id: str, history: CachedHistory, state: ReplayState) -> None:
        """DTAS repair path: history is final but the Instances row may not say so.

        A crash between the history commit and the Instances write of a *final* episode
        leaves the row ``Running`` forever, because no later episode rewrites it. The inbound
        message re-appears after its visibility timeout and lands here: rewrite the row from
        the history (merge, so the last custom status survives).
        """
        record = await self._hub.instances.get(instance_id, fetch_input=False, fetch_output=False)
        row = record.state if record else None
        if row is not None and row.execution_id == history.execution_id and row.runtime_status == state.status:
            return
        await self._hub.instances.rewrite_from_history(instance_id, history.execution_id or "", history.events)
        log.warning(
            "orchestration.instance_row_repaired",
            extra={"instance_id": instance_id, "status": state.status.name},
        )

    @staticmethod
    def _hold_early_entity_responses(instance_id: str, batch: _Batch, history: CachedHistory) -> None:
        """DTAS ``IsOutOfOrderMessage`` for entity responses: wait until the EventSent they answer is committed.

        Not for a finished instance: nothing can commit that EventSent any more (an answer to a
        request of a discarded episode attempt), so the episode discards it.
        """
        if history.events and runtime_status(history.events).is_terminal:
            return
        for message in batch.messages:
            if not is_early_entity_response(message, instance_id, history.events):
                continue
            if not history.events and message.dequeue_count > _MAX_OUT_OF_ORDER_FOR_UNKNOWN:
                continue  # a zombie: let the episode discard it
            batch.defer.append((message, None))

    # ------------------------------------------------------------------ start de-duplication
    async def _screen_starts(self, instance_id: str, batch: _Batch) -> None:
        """DTAS duplicate-start detection: a top-level start must match the Instances row written by its client."""
        starts = [
            m
            for m in batch.messages
            if isinstance(batch.event(m), ExecutionStartedEvent) and batch.event(m).parent_instance is None  # type: ignore[attr-defined]
        ]
        if not starts:
            return
        if self._inserted_here(instance_id, batch, starts):
            return
        record = await self._hub.instances.get(instance_id, fetch_input=False, fetch_output=False)
        row = record.state if record else None
        for message in starts:
            event = batch.event(message)
            assert isinstance(event, ExecutionStartedEvent) and event.orchestration_instance is not None
            execution = event.orchestration_instance.execution_id
            if (
                row is not None
                and execution
                and row.execution_id == execution
                and row.runtime_status == OrchestrationStatus.Pending
                and not event.generation
                and message.dequeue_count <= 1  # a retry (after a 409, below) reads the history
            ):
                batch.fresh_start = execution
            if row is None or row.execution_id is None or (execution or "").lower() == row.execution_id.lower():
                if row is not None and row.runtime_status == OrchestrationStatus.Terminated:
                    log.info("orchestration.start_after_terminate_dropped", extra={"instance_id": instance_id})
                    batch.delete.append(message)
                continue
            superseded = (
                event.generation is not None and row.generation is not None and event.generation < row.generation
            )
            if (
                message.dequeue_count >= _MAX_START_DEFERRALS
                or superseded
                or (
                    event.generation == row.generation
                    and row.runtime_status == OrchestrationStatus.Pending
                    and row.created_time is not None
                    and row.created_time < event.timestamp
                )
            ):
                log.info("orchestration.duplicate_start_dropped", extra={"instance_id": instance_id})
                batch.delete.append(message)
            else:
                batch.defer.append((message, None))

    async def _screen_child_starts(self, instance_id: str, batch: _Batch) -> None:
        """Drop a second start of the same sub-orchestration (see :mod:`.child_starts`)."""
        starts = [e for e in batch.events() if is_child_start(e)]
        if not starts:
            return
        cached = self._cache.get(instance_id)
        if cached is not None and cached.events:
            current = cached.events
        else:
            batch.latest = await self._hub.history.load(instance_id)
            current = batch.latest.events
        for event in starts:
            assert isinstance(event, ExecutionStartedEvent)
            if repeats_current_start(event, current):
                log.info("orchestration.duplicate_child_start_dropped", extra={"instance_id": instance_id})
                batch.delete.append(batch.message_of(event))

    def _inserted_here(self, instance_id: str, batch: _Batch, starts: list[QueueMessage]) -> bool:
        """The row read above, known without reading: a client here just inserted it (fresh_starts.py).

        Only for one first-generation start seen for the first time; the row is then this
        execution's and Pending, so the start is fresh and nothing is dropped or deferred.
        """
        if len(starts) != 1 or starts[0].dequeue_count > 1:
            return False
        event = batch.event(starts[0])
        assert isinstance(event, ExecutionStartedEvent) and event.orchestration_instance is not None
        execution = event.orchestration_instance.execution_id
        if event.generation or not execution or not self._hub.instances.inserted_here(instance_id, execution):
            return False
        batch.fresh_start = execution
        return True

    # ------------------------------------------------------------------ classification
    async def _classify_leftovers(
        self, instance_id: str, batch: _Batch, plan: EpisodePlan, history: CachedHistory
    ) -> None:
        """Map the plan's dropped/deferred events back to their queue messages."""
        for dropped in plan.dropped:
            message = batch.message_of(dropped.event)
            if dropped.reason == "no such instance" and plan.terminated is None:
                delay = await self._pending_start_delay(instance_id)
                if delay is not None:
                    # Raised before the start was processed (DTAS issue #720 drops these).
                    batch.defer.append((message, delay))
                    continue
                if is_out_of_order(dropped.event, ()) and message.dequeue_count <= _MAX_OUT_OF_ORDER_FOR_UNKNOWN:
                    # DTAS ``IsOutOfOrderMessage``: a response may beat its instance's first history commit (the
                    # scheduling episode sends before it writes history, and the partition may
                    # have moved meanwhile). Deleting it would strand the instance, so it is out
                    # of order (abandoned with back-off) until its 6th dequeue.
                    batch.defer.append((message, None))
                    continue
            log.info(
                "orchestration.message_discarded",
                extra={"instance_id": instance_id, "reason": dropped.reason, "event": dropped.event.event_type.name},
            )
            batch.delete.append(message)
        for event in plan.deferred:
            message = batch.message_of(event)
            if not history.events and message.dequeue_count > _MAX_OUT_OF_ORDER_FOR_UNKNOWN:
                log.info("orchestration.response_to_unknown_instance", extra={"instance_id": instance_id})
                batch.delete.append(message)
            else:
                batch.defer.append((message, None))

    async def _pending_start_delay(self, instance_id: str) -> timedelta | None:
        """If the instance exists but has not started yet, how long to hold its early events."""
        record = await self._hub.instances.get(instance_id, fetch_input=False, fetch_output=False)
        if record is None or record.state.runtime_status != OrchestrationStatus.Pending:
            return None
        scheduled = record.state.scheduled_start_time
        if scheduled is not None and scheduled > utc_now():
            return min(scheduled - utc_now() + timedelta(seconds=1), timedelta(days=6))
        return timedelta(seconds=1)

    async def _finish_without_episode(self, instance_id: str, batch: _Batch, plan: EpisodePlan) -> None:
        if plan.terminated is not None and not plan.executable:
            # Terminating an instance that has not started: DTAS UpdateStatusForTerminationAsync.
            await self._hub.instances.update_terminated_without_history(instance_id, plan.terminated)
            terminated_msg = batch.message_of(plan.terminated)
            if terminated_msg not in batch.delete:
                batch.delete.append(terminated_msg)
        await self._settle(batch)

    # ------------------------------------------------------------------ checkpoint
    async def _commit(
        self,
        instance_id: str,
        batch: _Batch,
        history: CachedHistory,
        outcome: EpisodeOutcome,
        clock: _Clock,
        committed: Callable[[], None],
    ) -> None:
        now = clock.now
        outbound, persisted, execution_id, past = await self._run_continue_as_new(instance_id, outcome, history, clock)
        await self._record_clock(instance_id, history, clock, outbound)
        new_events = list(persisted.history)
        deferred = {id(m) for m, _ in batch.defer} | {id(m) for m in batch.parked.messages}
        applied = [m.message_id for m in batch.messages if id(m) not in deferred and recordable(m)]
        applied_ids = merged(history.applied_message_ids, applied) if applied else history.applied_message_ids
        result = await commit_checkpoint(
            self._hub,
            Checkpoint(
                instance_id=instance_id,
                execution_id=execution_id,
                new_events=new_events,
                event_count=len(past) + len(new_events),
                etag=history.etag,
                now=now,
                outbound=outbound,
                episode=persisted.episode,
                custom_status=persisted.custom_status,
                keep_custom_status=not persisted.ran_runtime,
                instance_row_written_at=(
                    history.instance_row_written_at if execution_id == history.execution_id else None
                ),
                instance_row_custom_status=history.instance_row_custom_status,
                applied_message_ids=applied_ids if applied else None,
                on_history_committed=committed,
            ),
        )
        if outcome.continued_as_new is not None and history.blob_names:
            await self._hub.history.delete_blobs(history.blob_names)
        for event in new_events:
            event.is_played = True
        self._cache.put(
            instance_id,
            CachedHistory(
                execution_id=execution_id,
                events=[*past, *new_events],
                etag=result.etag,
                blob_names=[] if outcome.continued_as_new else history.blob_names,
                instance_row_written_at=now if result.instance_row_written else history.instance_row_written_at,
                instance_row_custom_status=result.instance_row_custom_status,
                applied_message_ids=applied_ids,
            ),
        )
        consumed = batch.settled()
        batch.delete.extend(m for m in batch.messages if id(m) not in consumed)
        if batch.on_committed is not None:
            await batch.on_committed(batch.parked)
        await self._settle(batch)
        log.debug(
            "orchestration.checkpointed",
            extra={"instance_id": instance_id, "events": len(new_events), "status": persisted.status.name},
        )

    async def _record_clock(
        self, instance_id: str, history: CachedHistory, clock: _Clock, outbound: Sequence[TaskMessage]
    ) -> None:
        """Before anything is sent: a re-run of this episode must name its entity requests the same."""
        if (
            clock.pinned
            or not getattr(self._runtime, "entity_request_ids_follow_clock", True)
            or not sends_entity_requests_with_answers(outbound)
        ):
            return
        committed = history.execution_id or ""
        history.etag = await self._hub.history.pin_episode_clock(
            instance_id, committed, clock_value(committed, len(history.events), clock.now, clock.inputs), history.etag
        )

    async def _run_continue_as_new(
        self, instance_id: str, outcome: EpisodeOutcome, history: CachedHistory, clock: _Clock
    ) -> tuple[list[TaskMessage], EpisodeOutcome, str, list[HistoryEvent]]:
        """Follow ContinueAsNew in-process (as DTFx does); only the last execution is persisted."""
        messages = _outbound(outcome)
        current, past, execution_id = outcome, list(history.events), history.execution_id or ""
        hops = 0
        while current.continued_as_new is not None:
            hops += 1
            if hops > 1000:
                raise RuntimeError("ContinueAsNew loop did not settle")
            new = current.continued_as_new
            state = ReplayState(instance_id, [], id_factory=clock.ids)
            plan = state.prepare(list(new.new_events), now=clock.now)
            result = await self._runtime.run_episode(plan.request) if plan.request is not None else None
            current = state.apply(plan, result)
            messages += _outbound(current)
            past, execution_id = [], new.execution_id
        return messages, current, execution_id, past

    # ------------------------------------------------------------------ settle messages
    async def _settle(self, batch: _Batch) -> None:
        """Delete consumed messages and abandon deferred ones: the final commit step."""
        work = [self._hub.queue(m.queue_name).delete(m) for m in batch.delete]
        work += [
            self._hub.queue(m.queue_name).abandon(m, delay=delay if delay is not None else _deferral(m))
            for m, delay in batch.defer
        ]
        if len(work) == 1:
            await work[0]  # the common case: one message consumed, no task around it
        elif work:
            await asyncio.gather(*work)



def _trace_committed(
    instance_id: str, started: ExecutionStartedEvent, past: Sequence[HistoryEvent], outcome: EpisodeOutcome
) -> None:
    """Spans of what this committed episode finished: fired timers, and the orchestration when it ended."""
    now = utc_now()
    created = {e.event_id: e for e in past if isinstance(e, TimerCreatedEvent)}
    for event in outcome.history:
        if isinstance(event, TimerFiredEvent) and event.timer_id in created:
            timer = created[event.timer_id]
            tracing.emit_timer_span(started, event.timer_id, timer.timestamp, event.fire_at, event.fire_at or now)
    tracing.emit_client_spans(started, instance_id, past, outcome.history)
    ended = outcome.continued_as_new is not None or outcome.status.is_terminal
    if ended:
        status = OrchestrationStatus.ContinuedAsNew if outcome.continued_as_new is not None else outcome.status
        tracing.emit_orchestration_span(started, instance_id, status, outcome.failure_details, now)


def _as_expected(latest: HistoryLoad | None, expected: str | None) -> HistoryLoad | None:
    """What ``history.load(instance_id, expected)`` returns, from a read of the newest generation."""
    if latest is None or expected is None or latest.execution_id == expected:
        return latest
    return replace(latest, events=[], execution_id=expected, blob_names=[])


def _outbound(outcome: EpisodeOutcome) -> list[TaskMessage]:
    return [*outcome.work_item_messages, *outcome.timer_messages, *outcome.orchestrator_messages]


def _last_complete_episode(events: list[HistoryEvent]) -> list[HistoryEvent]:
    """History up to the last ``OrchestratorCompleted``: what a complete checkpoint wrote.

    A checkpoint larger than one table transaction (99 events) is written in several; a crash
    between them leaves the sentinel's ``IsCheckpointComplete`` false and a partial episode
    behind. Dropping it makes the inbound messages (never deleted) replay that episode, whose
    rows are rewritten in place at the same RowKeys.
    """
    for index in range(len(events) - 1, -1, -1):
        if events[index].event_type == EventType.OrchestratorCompleted:
            return events[: index + 1]
    return []


def _take_recorded_inputs(instance_id: str, batch: _Batch, record: RecordedEpisode) -> bool:
    """Arrange a re-run to use exactly the recorded inputs, in their order; False: not all here yet.

    Newer messages are kept for the next batch; while some recorded ones are still away (backing
    off, or locked by a killed holder) everything is parked and waits for them.
    """
    available = {m.message_id: m for m in batch.unsettled()}
    if not all(i in available for i in record.message_ids):
        log.info("orchestration.rerun_waits_for_inputs", extra={"instance_id": instance_id})
        batch.parked = Parked(list(available.values()), wake_after=WAIT_TICK)
        return False
    wanted = set(record.message_ids)
    extra = [m for m in available.values() if m.message_id not in wanted]
    batch.parked = Parked(extra)
    first = [available[i] for i in record.message_ids]
    batch.messages = first + [m for m in batch.messages if m.message_id not in wanted]
    return True


def _drop_earlier_attempts(instance_id: str, batch: _Batch, history: CachedHistory) -> None:
    """A response to a retried activity's earlier attempt is not the current attempt's answer."""
    settled = {id(m) for m in batch.delete} | {id(m) for m, _ in batch.defer}
    for message in batch.messages:
        episode = message.data.episode if message.data is not None else None
        event = batch.event(message)
        if id(message) not in settled and answers_an_earlier_attempt(event, episode, history.events):
            log.info(
                "orchestration.earlier_attempt_response_dropped",
                extra={"instance_id": instance_id, "task_id": getattr(event, "task_scheduled_id", None)},
            )
            batch.delete.append(message)


def _drop_already_applied(instance_id: str, batch: _Batch, history: CachedHistory) -> None:
    """A copy of a message whose effect the committed history already holds (worker/applied.py)."""
    settled = {id(m) for m in batch.delete} | {id(m) for m, _ in batch.defer}
    for message in already_applied(batch.messages, history.applied_message_ids):
        if id(message) not in settled:
            log.warning(
                "orchestration.applied_message_dropped",
                extra={"instance_id": instance_id, "message_id": message.message_id},
            )
            batch.delete.append(message)


_MAX_DEFERRAL = timedelta(seconds=15)


def _deferral(message: QueueMessage) -> timedelta:
    """Back-off for a message that came too early (a response that beat its history commit).

    DTAS's ``2^DequeueCount`` grows to minutes once storage trouble has inflated the dequeue
    count (every lapsed lock and retried receive counts), and the instance then waits for
    nothing: the chaos suite saw an entity response held back for over two minutes after its
    EventSent was committed. Capped at 15 s, an early message costs a few extra dequeues.
    """
    return min(abandon_delay(message.dequeue_count), _MAX_DEFERRAL)
