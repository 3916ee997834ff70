"""Pure replay state: inbound events + runtime actions -> history rows + outbound messages.

This is DurableTask.Core's ``OrchestrationRuntimeState`` plus the action handling of
``TaskOrchestrationDispatcher``, with no I/O (like durabletask-go ``runtimestate.go``), so
every rule is unit-tested without storage. One episode is two calls around the runtime::

    state = ReplayState(instance_id, past_events)          # committed history of the execution
    plan = state.prepare(inbound_events, now=now)           # filter, order, hold, re-arm
    result = await runtime.run_episode(plan.request) if plan.request else None
    outcome = state.apply(plan, result)                     # events to append, messages to send

Design decisions (see also the module docstrings of ``base`` and ``actions``):

* **Suspension.** Events that arrive while the instance is suspended (other than Resume and
  Terminate) are *held*: they are appended to history in arrival order after
  ``ExecutionSuspended``, exactly where DTFx writes them, so their queue messages can be
  deleted (no 7-day visibility games), but user code is not run for them. On resume the
  runtime sees them in past history behind the suspension marker; the durabletask SDK buffers
  such events itself and releases them at ``ExecutionResumed``.
* **Termination.** ``ExecutionTerminated`` ends the execution without running user code:
  ``ExecutionCompleted(Terminated, Result=reason)`` and, for a sub-orchestration, a
  ``SubOrchestrationInstanceFailed`` to the parent (as DTFx does).
* **Long timers.** Azure queue visibility is capped at 7 days. A timer whose
  ``fire_at - now`` exceeds :data:`MAX_TIMER_DELAY` keeps ONE ``TimerCreated`` (the final
  ``FireAt``, which is what the SDK asked for), but its ``TimerFired`` message is sent for
  an intermediate hop of :data:`LONG_TIMER_INTERVAL`. A ``TimerFired`` whose ``FireAt`` is
  before its ``TimerCreated.FireAt`` is such a hop: it is not shown to the runtime and not
  written to history; :meth:`ReplayState.prepare` re-arms the next hop (recomputed from
  ``now``). So the SDK's timer task completes exactly once, at the final hop, and no SDK
  sequence ids are consumed by hops (Durable Functions writes one TimerCreated per hop
  instead; both are valid histories).
* **ContinueAsNew.** The finishing execution's events are returned for logging and the
  Instances row, but DTAS never persists them: the worker runs the new execution returned
  in :attr:`EpisodeOutcome.continued_as_new` through ``prepare``/``apply`` of a fresh
  ``ReplayState`` and writes *that* history from RowKey 0 (DTFx loops the same way
  in-process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..model import (
    ContinueAsNewEvent,
    DistributedTraceContext,
    EventRaisedEvent,
    EventSentEvent,
    EventType,
    ExecutionCompletedEvent,
    ExecutionStartedEvent,
    ExecutionTerminatedEvent,
    FailureDetails,
    HistoryEvent,
    OrchestrationExecutionContext,
    OrchestrationInstance,
    OrchestrationStatus,
    OrchestratorCompletedEvent,
    OrchestratorStartedEvent,
    ParentInstance,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskMessage,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)
from .actions import (
    Action,
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from .base import EpisodeRequest, EpisodeResult
from .rules import (
    FIRE_AND_FORGET_TAG,
    LONG_TIMER_INTERVAL,
    MAX_TIMER_DELAY,
    UNSUSPENDABLE,
    HistoryLedger,
    execution_started_first,
    is_duplicate,
    is_out_of_order,
    merge_tags,
    new_execution_id,
    next_timer_hop,
    runtime_status,
)

__all__ = [
    "DroppedEvent",
    "EpisodeOutcome",
    "EpisodePlan",
    "FIRE_AND_FORGET_TAG",
    "LONG_TIMER_INTERVAL",
    "MAX_TIMER_DELAY",
    "NewExecution",
    "ReplayState",
    "is_duplicate",
    "is_out_of_order",
    "new_execution_id",
    "next_timer_hop",
    "runtime_status",
]

_log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DroppedEvent:
    """An inbound event that was discarded, and why (for logs and message deletion)."""

    event: HistoryEvent
    reason: str


@dataclass(frozen=True, kw_only=True)
class EpisodePlan:
    """The classified inbound batch of one episode.

    * ``accepted`` go to history (after ``orchestrator_started``), in order;
    * ``held`` is the subset of ``accepted`` not shown to the runtime (suspension);
    * ``dropped`` are discarded (duplicates, terminal or unknown instance): delete their messages;
    * ``deferred`` are out of order: abandon their messages with back-off;
    * ``timer_hops`` are re-armed long-timer messages (the hop that arrived is consumed);
    * ``request`` is ``None`` when user code must not run (nothing to deliver, terminated,
      suspended, terminal, no instance).
    """

    orchestrator_started: OrchestratorStartedEvent
    accepted: tuple[HistoryEvent, ...] = ()
    held: tuple[HistoryEvent, ...] = ()
    dropped: tuple[DroppedEvent, ...] = ()
    deferred: tuple[HistoryEvent, ...] = ()
    timer_hops: tuple[TaskMessage, ...] = ()
    terminated: ExecutionTerminatedEvent | None = None
    executable: bool = True
    request: EpisodeRequest | None = None


@dataclass(frozen=True, kw_only=True)
class NewExecution:
    """The next execution after ContinueAsNew: feed ``new_events`` to a fresh ReplayState."""

    execution_id: str
    started: ExecutionStartedEvent
    new_events: tuple[HistoryEvent, ...]


@dataclass(frozen=True, kw_only=True)
class EpisodeOutcome:
    """Everything the worker commits for one episode (DTAS checkpoint order: messages first).

    * ``history``: append to the execution's history (empty: write nothing);
    * ``work_item_messages``: to the work-item queue (TaskScheduled, EventId = task id);
    * ``timer_messages``: TimerFired to this instance's own control queue, visible at
      ``event.fire_at``;
    * ``orchestrator_messages``: to the control queue of ``orchestration_instance.instance_id``
      (sub-orchestration starts, EventRaised, parent notifications);
    * ``status``/``output``/``failure_details``: for the Instances row; after ContinueAsNew the
      status is Running (the new execution's) and ``continued_as_new`` is set;
    * ``custom_status``: only meaningful when ``ran_runtime`` (otherwise leave the column);
    * ``episode``: ``MessageData.Episode`` for every message sent (OrchestratorStarted count).
    """

    history: tuple[HistoryEvent, ...] = ()
    work_item_messages: tuple[TaskMessage, ...] = ()
    timer_messages: tuple[TaskMessage, ...] = ()
    orchestrator_messages: tuple[TaskMessage, ...] = ()
    status: OrchestrationStatus = OrchestrationStatus.Running
    output: str | None = None
    failure_details: FailureDetails | None = None
    custom_status: str | None = None
    ran_runtime: bool = False
    episode: int = 0
    continued_as_new: NewExecution | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


@dataclass
class _Commit:
    """Mutable accumulator used while applying actions; frozen into an EpisodeOutcome."""

    history: list[HistoryEvent]
    work_items: list[TaskMessage] = field(default_factory=list)
    timers: list[TaskMessage] = field(default_factory=list)
    orchestrator: list[TaskMessage] = field(default_factory=list)
    completion: CompleteOrchestration | None = None
    continued_as_new: NewExecution | None = None


class ReplayState:
    """The committed history of one execution, with the rules that extend it.

    ``id_factory`` makes execution ids (sub-orchestrations, ContinueAsNew); tests inject a
    deterministic one.
    """

    def __init__(
        self,
        instance_id: str,
        past_events: Sequence[HistoryEvent],
        *,
        id_factory: Callable[[], str] = new_execution_id,
    ) -> None:
        self.instance_id = instance_id
        self.past: tuple[HistoryEvent, ...] = tuple(past_events)
        self._status: OrchestrationStatus | None = None
        self._new_id = id_factory
        self.started: ExecutionStartedEvent | None = next(
            (e for e in self.past if isinstance(e, ExecutionStartedEvent)), None
        )

    # ------------------------------------------------------------------ derived facts
    @property
    def status(self) -> OrchestrationStatus:
        """From ``past`` (a tuple, never replaced): scanned once, not per question."""
        status = self._status
        if status is None:
            status = self._status = runtime_status(self.past)
        return status

    @property
    def execution_id(self) -> str | None:
        inst = self.started.orchestration_instance if self.started else None
        return inst.execution_id if inst else None

    @property
    def episode_count(self) -> int:
        """Number of OrchestratorStarted events so far (DTAS ``MessageData.Episode``)."""
        return sum(1 for e in self.past if e.event_type == EventType.OrchestratorStarted)

    def next_action_id(self) -> int:
        """One past the highest EventId in history; used for engine-made completions."""
        return max((e.event_id for e in self.past), default=-1) + 1

    # ------------------------------------------------------------------ prepare
    def prepare(self, new_events: Sequence[HistoryEvent], *, now: datetime) -> EpisodePlan:
        """Classify an inbound batch; ``now`` becomes the episode's OrchestratorStarted time."""
        started_evt = OrchestratorStartedEvent(timestamp=now)
        ordered = execution_started_first(new_events)
        if self.status.is_terminal:
            dropped = tuple(DroppedEvent(e, "instance is in a terminal state") for e in ordered)
            return EpisodePlan(orchestrator_started=started_evt, dropped=dropped, executable=False)
        if self.started is None and not any(isinstance(e, ExecutionStartedEvent) for e in ordered):
            dropped = tuple(DroppedEvent(e, "no such instance") for e in ordered)
            terminated = next((e for e in ordered if isinstance(e, ExecutionTerminatedEvent)), None)
            return EpisodePlan(
                orchestrator_started=started_evt, dropped=dropped, terminated=terminated, executable=False
            )
        return self._classify(ordered, started_evt, now)

    def _classify(
        self, ordered: Sequence[HistoryEvent], started_evt: OrchestratorStartedEvent, now: datetime
    ) -> EpisodePlan:
        ledger = HistoryLedger(self.past)
        accepted: list[HistoryEvent] = []
        held: list[HistoryEvent] = []
        dropped: list[DroppedEvent] = []
        deferred: list[HistoryEvent] = []
        hops: list[TaskMessage] = []
        terminated: ExecutionTerminatedEvent | None = None
        suspended = self.status == OrchestrationStatus.Suspended
        for ev in ordered:
            if ledger.is_out_of_order(ev):
                deferred.append(ev)
                continue
            if ledger.is_duplicate(ev):
                dropped.append(DroppedEvent(ev, "duplicate"))
                continue
            hop = self._timer_hop(ev, ledger, now)
            if hop is not None:
                hops.append(hop)
                continue
            accepted.append(ev)
            ledger.add(ev)
            if isinstance(ev, ExecutionTerminatedEvent) and terminated is None:
                terminated = ev
            elif terminated is None and suspended and ev.event_type not in UNSUSPENDABLE:
                held.append(ev)
            if ev.event_type == EventType.ExecutionSuspended:
                suspended = True
            elif ev.event_type == EventType.ExecutionResumed:
                suspended = False
                # Events held earlier in this same batch were never committed, so the runtime
                # would not see them in past history: deliver them (in order, before the
                # resume; the SDK buffers them until it processes the resume).
                held.clear()
        plan = EpisodePlan(
            orchestrator_started=started_evt,
            accepted=tuple(accepted),
            held=tuple(held),
            dropped=tuple(dropped),
            deferred=tuple(deferred),
            timer_hops=tuple(hops),
            terminated=terminated,
        )
        return replace(plan, request=self._request(plan))

    def _timer_hop(self, ev: HistoryEvent, ledger: HistoryLedger, now: datetime) -> TaskMessage | None:
        """For an intermediate hop of a long timer, the message for the next hop."""
        if not isinstance(ev, TimerFiredEvent):
            return None
        created = ledger.timer_created(ev.timer_id)
        if created is None or ev.fire_at >= created.fire_at:
            return None
        _log.debug("runtime.timer_hop", extra={"instance_id": self.instance_id, "timer_id": ev.timer_id})
        return self._timer_message(ev.timer_id, created.fire_at, now)

    def _request(self, plan: EpisodePlan) -> EpisodeRequest | None:
        if plan.terminated is not None:
            return None
        held_ids = {id(e) for e in plan.held}
        deliver = [e for e in plan.accepted if id(e) not in held_ids]
        if all(e.event_type == EventType.ExecutionSuspended for e in deliver):
            return None
        started = self.started or next(e for e in plan.accepted if isinstance(e, ExecutionStartedEvent))
        inst = started.orchestration_instance
        return EpisodeRequest(
            instance_id=self.instance_id,
            execution_id=(inst.execution_id if inst else None) or "",
            past_events=self.past,
            new_events=(plan.orchestrator_started, *deliver),
        )

    # ------------------------------------------------------------------ apply
    def apply(self, plan: EpisodePlan, result: EpisodeResult | None) -> EpisodeOutcome:
        """Turn the plan and the runtime's result into history rows and messages."""
        if not plan.executable or not (plan.accepted or (result and result.actions)):
            return EpisodeOutcome(
                timer_messages=plan.timer_hops, status=self.status, episode=self.episode_count
            )
        commit = _Commit(history=[plan.orchestrator_started, *plan.accepted])
        commit.timers.extend(plan.timer_hops)
        started = self._started_for(plan)
        now = plan.orchestrator_started.timestamp
        if plan.terminated is not None:
            terminate = CompleteOrchestration(
                id=self.next_action_id(), status=OrchestrationStatus.Terminated, result=plan.terminated.input
            )
            self._complete(terminate, started, now, commit)
        elif result is not None:
            for action in result.actions:
                self._apply_action(action, started, now, commit)
        if commit.continued_as_new is None:
            commit.history.append(OrchestratorCompletedEvent(timestamp=now))
        return self._outcome(commit, result, plan)

    def _started_for(self, plan: EpisodePlan) -> ExecutionStartedEvent:
        if self.started is not None:
            return self.started
        return next(e for e in plan.accepted if isinstance(e, ExecutionStartedEvent))

    def _outcome(self, commit: _Commit, result: EpisodeResult | None, plan: EpisodePlan) -> EpisodeOutcome:
        done = commit.completion
        status = runtime_status((*self.past, *commit.history))
        if commit.continued_as_new is not None:
            status = OrchestrationStatus.Running
        return EpisodeOutcome(
            history=tuple(commit.history),
            work_item_messages=tuple(commit.work_items),
            timer_messages=tuple(commit.timers),
            orchestrator_messages=tuple(commit.orchestrator),
            status=status,
            output=done.result if done and commit.continued_as_new is None else None,
            failure_details=done.failure_details if done else None,
            custom_status=result.custom_status if result else None,
            ran_runtime=plan.request is not None and result is not None,
            episode=self.episode_count + 1,
            continued_as_new=commit.continued_as_new,
        )

    def _apply_action(self, action: Action, started: ExecutionStartedEvent, now: datetime, commit: _Commit) -> None:
        if commit.completion is not None:
            _log.warning(
                "runtime.action_after_completion",
                extra={"instance_id": self.instance_id, "action_id": action.id},
            )
            return
        if isinstance(action, ScheduleTask):
            self._schedule_task(action, started, now, commit)
        elif isinstance(action, CreateTimer):
            commit.history.append(TimerCreatedEvent(event_id=action.id, fire_at=action.fire_at, timestamp=now))
            commit.timers.append(self._timer_message(action.id, action.fire_at, now))
        elif isinstance(action, CreateSubOrchestration):
            self._create_sub_orchestration(action, started, now, commit)
        elif isinstance(action, SendEvent):
            self._send_event(action, now, commit)
        else:
            self._complete(action, started, now, commit)

    # ------------------------------------------------------------------ per action kind
    def _own_instance(self, started: ExecutionStartedEvent) -> OrchestrationInstance:
        inst = started.orchestration_instance
        return OrchestrationInstance(instance_id=self.instance_id, execution_id=inst.execution_id if inst else None)

    @staticmethod
    def _context(started: ExecutionStartedEvent) -> OrchestrationExecutionContext:
        return OrchestrationExecutionContext(orchestration_tags=dict(started.tags or {}))

    def _schedule_task(self, a: ScheduleTask, started: ExecutionStartedEvent, now: datetime, commit: _Commit) -> None:
        event = TaskScheduledEvent(
            event_id=a.id, name=a.name, version=a.version, input=a.input, tags=a.tags, timestamp=now,
            parent_trace_context=a.trace_context,
        )
        commit.history.append(event)
        commit.work_items.append(
            TaskMessage(
                event=replace(event),
                orchestration_instance=self._own_instance(started),
                orchestration_execution_context=self._context(started),
            )
        )

    def _timer_message(self, timer_id: int, final_fire_at: datetime, now: datetime) -> TaskMessage:
        fired = TimerFiredEvent(timer_id=timer_id, fire_at=next_timer_hop(final_fire_at, now), timestamp=now)
        own = self.started.orchestration_instance if self.started else None
        return TaskMessage(
            event=fired,
            orchestration_instance=OrchestrationInstance(
                instance_id=self.instance_id, execution_id=own.execution_id if own else None
            ),
        )

    def _create_sub_orchestration(
        self, a: CreateSubOrchestration, started: ExecutionStartedEvent, now: datetime, commit: _Commit
    ) -> None:
        tags = merge_tags(a.tags, started.tags)
        commit.history.append(
            SubOrchestrationInstanceCreatedEvent(
                event_id=a.id, name=a.name, version=a.version, instance_id=a.instance_id,
                input=a.input, tags=tags, timestamp=now, client_span_id=_span_id_of(a.trace_context),
            )
        )
        child = OrchestrationInstance(instance_id=a.instance_id, execution_id=self._new_id())
        child_start = ExecutionStartedEvent(
            orchestration_instance=child,
            parent_instance=ParentInstance(
                name=started.name, orchestration_instance=self._own_instance(started),
                task_schedule_id=a.id, version=started.version,
            ),
            name=a.name, version=a.version, input=a.input, tags=tags, timestamp=now,
            parent_trace_context=replace(a.trace_context) if a.trace_context is not None else None,
        )
        commit.orchestrator.append(
            TaskMessage(
                event=child_start,
                orchestration_instance=replace(child),
                orchestration_execution_context=self._context(started),
            )
        )

    @staticmethod
    def _send_event(a: SendEvent, now: datetime, commit: _Commit) -> None:
        commit.history.append(
            EventSentEvent(event_id=a.id, instance_id=a.instance_id, name=a.name, input=a.data, timestamp=now)
        )
        commit.orchestrator.append(
            TaskMessage(
                event=EventRaisedEvent(name=a.name, input=a.data, timestamp=now),
                orchestration_instance=OrchestrationInstance(instance_id=a.instance_id, execution_id=a.execution_id),
            )
        )

    def _complete(
        self, a: CompleteOrchestration, started: ExecutionStartedEvent, now: datetime, commit: _Commit
    ) -> None:
        commit.completion = a
        if a.status == OrchestrationStatus.ContinuedAsNew:
            commit.history.append(ContinueAsNewEvent(event_id=a.id, result=a.result, timestamp=now))
            commit.continued_as_new = self._new_execution(a, started, now)
            return
        commit.history.append(
            ExecutionCompletedEvent(
                event_id=a.id, orchestration_status=a.status, result=a.result,
                failure_details=a.failure_details, timestamp=now,
            )
        )
        notice = self._parent_notification(a, started, now)
        if notice is not None:
            commit.orchestrator.append(notice)

    def _new_execution(self, a: CompleteOrchestration, started: ExecutionStartedEvent, now: datetime) -> NewExecution:
        execution_id = self._new_id()
        new_started = ExecutionStartedEvent(
            orchestration_instance=OrchestrationInstance(instance_id=self.instance_id, execution_id=execution_id),
            parent_instance=started.parent_instance,
            name=started.name,
            version=a.new_version if a.new_version is not None else started.version,
            input=a.result,
            tags=dict(started.tags) if started.tags is not None else None,
            timestamp=now,
        )
        # carried-over events have no timestamp in the SDK (epoch): stamp them now
        carry = tuple(replace(e, event_id=-1, is_played=False, timestamp=now) for e in a.carryover_events)
        return NewExecution(execution_id=execution_id, started=new_started, new_events=(new_started, *carry))

    @staticmethod
    def _parent_notification(
        a: CompleteOrchestration, started: ExecutionStartedEvent, now: datetime
    ) -> TaskMessage | None:
        parent = started.parent_instance
        if parent is None or parent.orchestration_instance is None:
            return None
        if started.tags and FIRE_AND_FORGET_TAG in started.tags:
            return None
        event: HistoryEvent
        if a.status == OrchestrationStatus.Completed:
            event = SubOrchestrationInstanceCompletedEvent(
                task_scheduled_id=parent.task_schedule_id, result=a.result, timestamp=now
            )
        else:  # Failed or Terminated
            event = SubOrchestrationInstanceFailedEvent(
                task_scheduled_id=parent.task_schedule_id, reason=a.result,
                failure_details=a.failure_details, timestamp=now,
            )
        return TaskMessage(event=event, orchestration_instance=replace(parent.orchestration_instance))


def _span_id_of(ctx: DistributedTraceContext | None) -> str | None:
    """The span id part of a W3C ``traceparent`` (DTAS keeps a CLIENT span as ``ClientSpanId``)."""
    parts = ctx.trace_parent.split("-") if ctx is not None and ctx.trace_parent else []
    return parts[2] if len(parts) == 4 else None
