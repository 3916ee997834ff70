"""A tiny in-memory hub that drives ReplayState + a runtime like the worker will (tests only).

Each instance has an inbox of events; one ``step`` runs one episode per instance with a
non-empty inbox, executes activities inline and fires timers whose time has come (the clock
jumps to the earliest pending timer when nothing else is runnable).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from durable_azstorage.model import (
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskMessage,
    TimerFiredEvent,
)
from durable_azstorage.runtimes.base import ActivityRuntime, OrchestrationRuntime
from durable_azstorage.runtimes.state import EpisodeOutcome, ReplayState

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass
class Instance:
    history: list[HistoryEvent] = field(default_factory=list)
    inbox: list[HistoryEvent] = field(default_factory=list)
    status: OrchestrationStatus = OrchestrationStatus.Pending
    output: str | None = None
    custom_status: str | None = None
    outcomes: list[EpisodeOutcome] = field(default_factory=list)
    failure: Any = None


class Hub:
    def __init__(self, orchestrations: OrchestrationRuntime, activities: ActivityRuntime) -> None:
        self.orch = orchestrations
        self.acts = activities
        self.now = T0
        self.instances: dict[str, Instance] = {}
        self.timers: list[tuple[datetime, str, TimerFiredEvent]] = []
        self.activity_queue: list[TaskMessage] = []
        self._ids = (f"{i:032x}" for i in itertools.count(1))
        self.episodes = 0

    def new_id(self) -> str:
        return next(self._ids)

    def start(self, name: str, input: str | None = None, instance_id: str = "i1") -> Instance:
        started = ExecutionStartedEvent(
            orchestration_instance=OrchestrationInstance(instance_id=instance_id, execution_id=self.new_id()),
            name=name, input=input, timestamp=self.now,
        )
        inst = self.instances.setdefault(instance_id, Instance())
        inst.inbox.append(started)
        return inst

    def raise_event(self, instance_id: str, event: HistoryEvent) -> None:
        self.instances.setdefault(instance_id, Instance()).inbox.append(event)

    async def episode(self, iid: str) -> EpisodeOutcome:
        inst = self.instances[iid]
        inbound, inst.inbox = inst.inbox, []
        state = ReplayState(iid, inst.history, id_factory=self.new_id)
        plan = state.prepare(inbound, now=self.now)
        result = await self.orch.run_episode(plan.request) if plan.request else None
        out = state.apply(plan, result)
        self.episodes += 1
        inst.outcomes.append(out)
        self._route(iid, out)
        if out.continued_as_new is not None:
            inst.history = []
            inst.inbox = list(out.continued_as_new.new_events) + inst.inbox
        else:
            inst.history.extend(out.history)
        inst.status = out.status
        if out.ran_runtime:
            inst.custom_status = out.custom_status
        if out.is_terminal:
            inst.output, inst.failure = out.output, out.failure_details
        return out

    def _route(self, iid: str, out: EpisodeOutcome) -> None:
        self.activity_queue.extend(out.work_item_messages)
        for msg in out.timer_messages:
            assert isinstance(msg.event, TimerFiredEvent)
            self.timers.append((msg.event.fire_at, iid, msg.event))
        for msg in out.orchestrator_messages:
            self.raise_event(msg.orchestration_instance.instance_id, msg.event)

    async def run_activities(self) -> None:
        queue, self.activity_queue = self.activity_queue, []
        for msg in queue:
            ev = msg.event
            res = await self.acts.run_activity(
                ev.name or "", getattr(ev, "input", None),
                instance_id=msg.orchestration_instance.instance_id, task_id=ev.event_id,
            )
            reply: HistoryEvent
            if res.failure_details is not None:
                reply = TaskFailedEvent(task_scheduled_id=ev.event_id, failure_details=res.failure_details,
                                        timestamp=self.now)
            else:
                reply = TaskCompletedEvent(task_scheduled_id=ev.event_id, result=res.result, timestamp=self.now)
            self.raise_event(msg.orchestration_instance.instance_id, reply)

    def fire_due_timers(self) -> bool:
        if not self.timers:
            return False
        due = min(t[0] for t in self.timers)
        self.now = max(self.now, due)
        keep = []
        for fire_at, iid, ev in self.timers:
            if fire_at <= self.now:
                self.raise_event(iid, replace(ev, timestamp=self.now))
            else:
                keep.append((fire_at, iid, ev))
        self.timers = keep
        return True

    async def run(self, max_rounds: int = 200, *, fire_timers: bool = True) -> None:
        """Run until nothing is runnable (no inbox, no activity, no timer)."""
        for _ in range(max_rounds):
            self.now += timedelta(seconds=1)
            busy = [iid for iid, inst in self.instances.items() if inst.inbox]
            for iid in busy:
                await self.episode(iid)
            if self.activity_queue:
                await self.run_activities()
                continue
            if busy:
                continue
            if not (fire_timers and self.fire_due_timers()):
                return
        raise AssertionError("hub did not settle")
