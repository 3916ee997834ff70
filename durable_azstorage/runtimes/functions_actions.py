"""Turn an azure-functions-durable orchestrator's cumulative action list into new canonical actions.

The SDK returns *every* action since the execution started, without ids (docs/functions-apps.md).
The extension's ``OutOfProcOrchestrationShim`` feeds them to DTFx, whose context numbers
scheduled work from 0 and matches it against history by id. We reproduce that numbering here:

* one id per activity, timer, sub-orchestration, ``call_http`` and entity call/signal, none
  for ``wait_for_external_event``; top-level actions are awaited one after another;
* a compound (WhenAll/WhenAny) schedules its children in order, then waits;
* ``…WithRetry`` follows DTFx's ``RetryInterceptor``: attempt id *n*, on failure a timer *n+1*
  (created even after the last attempt), then the next attempt, ids taken in the order the
  failures and timer firings appear in history.

An id already in history is an old action (its type and name must match, else the code no
longer matches its history and the instance fails); the rest are this episode's new actions.
Pure code: no I/O, no SDK import.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..model import (
    EventSentEvent,
    FailureDetails,
    HistoryEvent,
    OrchestrationStatus,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    TaskCompletedEvent,
    TaskFailedEvent,
    TaskScheduledEvent,
    TimerCreatedEvent,
    TimerFiredEvent,
)
from .actions import Action, CompleteOrchestration, CreateSubOrchestration, CreateTimer, ScheduleTask

__all__ = ["HTTP_ACTIVITY", "ActionWalk", "NonDeterminismError", "ShimResult", "top_level_actions", "translate_actions"]

HTTP_ACTIVITY = "BuiltIn::HttpActivity"
"""The reserved activity the extension runs for ``call_http``."""

CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_EVENT, CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 4, 5, 6, 7, 8, 9
SCHEDULED_SIGNAL, WHEN_ANY, WHEN_ALL = 10, 11, 12
_SUB_NAMESPACE = uuid.UUID("0b2f3c9e-5a41-4bde-9a57-2f7d0c61a9e4")


class NonDeterminismError(Exception):
    """The orchestrator's actions no longer match the history it is replaying.

    ``recorded`` and ``new`` name the history's call and the code's call (for ``replay-check``).
    """

    def __init__(self, message: str, *, recorded: str | None = None, new: str | None = None) -> None:
        super().__init__(message)
        self.recorded = recorded
        self.new = new


@dataclass
class ShimResult:
    """New actions in id order, plus the next free id (for the completion action)."""

    actions: list[Action] = field(default_factory=list)
    next_id: int = 0


_SCHEDULING = (TaskScheduledEvent, TimerCreatedEvent, SubOrchestrationInstanceCreatedEvent, EventSentEvent)
_OUTCOMES = (
    TaskCompletedEvent, TaskFailedEvent, SubOrchestrationInstanceCompletedEvent, SubOrchestrationInstanceFailedEvent,
)
_SUCCESSES = (TaskCompletedEvent, SubOrchestrationInstanceCompletedEvent)


@dataclass
class _History:
    """Lookups over the current execution's events (past then new), by position.

    Built by appending (:meth:`extend`), so a walk kept between episodes folds in only the
    events it has not seen; the lookups are the same as a build over the whole list.
    """

    scheduled: dict[int, HistoryEvent] = field(default_factory=dict)
    outcome: dict[int, tuple[int, HistoryEvent]] = field(default_factory=dict)
    fired: dict[int, int] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    length: int = 0

    def extend(self, events: Sequence[HistoryEvent]) -> None:
        for pos, e in enumerate(events, start=self.length):
            if isinstance(e, _SCHEDULING):
                self.scheduled[e.event_id] = e
            elif isinstance(e, _OUTCOMES):
                self.outcome.setdefault(e.task_scheduled_id, (pos, e))
            elif isinstance(e, TimerFiredEvent):
                self.fired.setdefault(e.timer_id, pos)
        self.length += len(events)


@dataclass
class _Retry:
    """One ``…WithRetry`` action being walked through its attempts."""

    action: Mapping[str, Any]
    attempt_id: int
    attempt: int = 1
    timer_id: int | None = None


class _Shim:
    def __init__(self, history: _History, instance_id: str, execution_id: str, next_id: int = 0) -> None:
        self.history = history
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.next_id = next_id
        self.new: list[Action] = []
        self.entity_actions: list[tuple[int, Mapping[str, Any]]] = []
        self.settled = 0  # leading top-level actions no later history can change
        self.settled_next_id = next_id  # the next free id after them

    # ---------------------------------------------------------------- walk
    def run(self, top_level: Sequence[Mapping[str, Any]]) -> None:
        open_before = False
        for action in top_level:
            first_id, new_before = self.next_id, len(self.new) + len(self.entity_actions)
            leaves = list(_leaves(action))
            retries = [r for r in (self._start(leaf) for leaf in leaves) if r is not None]
            self._follow_retries(retries)
            emitted = len(self.new) + len(self.entity_actions) > new_before
            open_before = open_before or emitted or not self._settled(leaves, retries, first_id)
            if not open_before:
                self.settled, self.settled_next_id = self.settled + 1, self.next_id

    def _settled(self, leaves: Sequence[Mapping[str, Any]], retries: Sequence[_Retry], first_id: int) -> bool:
        """Every id the action took is in history and no retry can take another one.

        Such an action walks the same way against any longer history (history only grows, and
        its lookups keep their first entries), so a later walk may start after it.
        """
        if any(leaf.get("actionType") == CONTINUE_AS_NEW for leaf in leaves):
            return False  # kept in view: the completion reads the last action
        if any(i not in self.history.scheduled for i in range(first_id, self.next_id)):
            return False
        return all(self._retry_done(r) for r in retries)

    def _retry_done(self, retry: _Retry) -> bool:
        if retry.timer_id is None:
            outcome = self.history.outcome.get(retry.attempt_id)
            return outcome is not None and isinstance(outcome[1], _SUCCESSES)
        return retry.timer_id in self.history.fired and retry.attempt >= _max_attempts(retry.action)

    def _start(self, action: Mapping[str, Any]) -> _Retry | None:
        kind = action.get("actionType")
        if kind in (WAIT_EVENT, CONTINUE_AS_NEW):
            return None
        action_id = self._take_id()
        if kind in (CALL_ACTIVITY_RETRY, CALL_SUB_RETRY):
            self._schedule(action_id, action)
            return _Retry(action, action_id)
        if kind in (CALL_ENTITY, SIGNAL_ENTITY, SCHEDULED_SIGNAL):
            self._check(action_id, action, EventSentEvent, None)
            if action_id not in self.history.scheduled:
                self.entity_actions.append((action_id, action))
            return None
        self._schedule(action_id, action)
        return None

    def _follow_retries(self, retries: list[_Retry]) -> None:
        """Allocate retry timers and re-attempts in the order their triggers sit in history."""
        queue: list[tuple[int, int, _Retry]] = []
        for n, retry in enumerate(retries):
            self._enqueue(queue, n, retry)
        while queue:
            _, n, retry = heapq.heappop(queue)
            if retry.timer_id is None:
                retry.timer_id = self._take_id()
                self._timer_for_retry(retry)
            else:
                retry.attempt += 1
                retry.attempt_id, retry.timer_id = self._take_id(), None
                self._schedule(retry.attempt_id, retry.action)
            self._enqueue(queue, n, retry)

    def _enqueue(self, queue: list[tuple[int, int, _Retry]], n: int, retry: _Retry) -> None:
        if retry.timer_id is None:
            outcome = self.history.outcome.get(retry.attempt_id)
            if outcome is not None and isinstance(outcome[1], (TaskFailedEvent, SubOrchestrationInstanceFailedEvent)):
                heapq.heappush(queue, (outcome[0], n, retry))
            return
        fired = self.history.fired.get(retry.timer_id)
        if fired is not None and retry.attempt < _max_attempts(retry.action):
            heapq.heappush(queue, (fired, n, retry))

    def _timer_for_retry(self, retry: _Retry) -> None:
        assert retry.timer_id is not None
        self._check(retry.timer_id, {"actionType": CREATE_TIMER}, TimerCreatedEvent, None)
        if retry.timer_id not in self.history.scheduled:
            delay = timedelta(milliseconds=_retry_interval_ms(retry.action))
            self.new.append(CreateTimer(id=retry.timer_id, fire_at=self.history.now + delay))

    # ---------------------------------------------------------------- scheduling
    def _take_id(self) -> int:
        taken, self.next_id = self.next_id, self.next_id + 1
        return taken

    def _schedule(self, action_id: int, action: Mapping[str, Any]) -> None:
        kind = action.get("actionType")
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
            name = str(action.get("functionName") or "")
            self._check(action_id, action, TaskScheduledEvent, name)
            if action_id not in self.history.scheduled:
                self.new.append(ScheduleTask(id=action_id, name=name, input=_wrap_input(action.get("input"))))
        elif kind in (CALL_SUB, CALL_SUB_RETRY):
            name = str(action.get("functionName") or "")
            self._check(action_id, action, SubOrchestrationInstanceCreatedEvent, name)
            if action_id not in self.history.scheduled:
                child = action.get("instanceId") or self._child_id(action_id)
                version = action.get("version")
                self.new.append(CreateSubOrchestration(
                    id=action_id, name=name, instance_id=str(child),
                    version=str(version) if version else None, input=_stored(action.get("input")),
                ))
        elif kind == CREATE_TIMER:
            self._check(action_id, action, TimerCreatedEvent, None)
            if action_id not in self.history.scheduled:
                self.new.append(CreateTimer(id=action_id, fire_at=_parse_time(str(action["fireAt"]))))
        elif kind == CALL_HTTP:
            self._check(action_id, action, TaskScheduledEvent, HTTP_ACTIVITY)
            if action_id not in self.history.scheduled:
                request = json.dumps(action.get("httpRequest") or {})
                self.new.append(ScheduleTask(id=action_id, name=HTTP_ACTIVITY, input=json.dumps([request])))
        else:
            raise NonDeterminismError(f"unsupported orchestrator action type {kind!r}")

    def _child_id(self, action_id: int) -> str:
        # Deterministic, so a re-run of an uncommitted episode starts the same child.
        return str(uuid.uuid5(_SUB_NAMESPACE, f"{self.instance_id}\n{self.execution_id}\n{action_id}"))

    def _check(self, action_id: int, action: Mapping[str, Any], expected: type, name: str | None) -> None:
        event = self.history.scheduled.get(action_id)
        if event is None:
            return
        if not isinstance(event, expected) or (name is not None and (getattr(event, "name", None) or "") != name):
            recorded = f"{type(event).__name__.removesuffix('Event')} {getattr(event, 'name', '') or ''}".strip()
            wanted = f"{expected.__name__.removesuffix('Event')} {name or ''}".strip()
            raise NonDeterminismError(
                f"Non-deterministic workflow detected: history has {recorded!r} with id {action_id}, "
                f"but the orchestrator code now schedules {wanted!r} (actionType {action.get('actionType')}). "
                "The code changed while this instance was running.",
                recorded=f"{recorded} #{action_id}", new=f"{wanted} #{action_id}",
            )


def translate_actions(
    state: Mapping[str, Any],
    events: Sequence[HistoryEvent],
    *,
    instance_id: str,
    execution_id: str,
    now: datetime,
) -> tuple[ShimResult, list[tuple[int, Mapping[str, Any]]]]:
    """New canonical actions for ``state`` (the SDK's output) against ``events``.

    Returns the shim result and the new entity actions as ``(id, action JSON)`` so the caller
    can encode them with the entity message encoder. Raises :class:`NonDeterminismError`.
    """
    walk = ActionWalk(instance_id, execution_id)
    walk.add_events(events)
    return walk.translate(_top_level(state), now)


class ActionWalk:
    """The shim's walk kept between episodes of one execution, so each episode costs its news only.

    ``translate`` is given the SDK's top-level actions from :attr:`settled` on (the ones before
    it no longer change) and ``add_events`` the events since the last call; the result is the
    one :func:`translate_actions` gives for the whole action list and history.
    """

    def __init__(self, instance_id: str, execution_id: str) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self._history = _History()
        self.settled = 0
        self._next_id = 0

    @property
    def events(self) -> int:
        return self._history.length

    def add_events(self, events: Sequence[HistoryEvent]) -> None:
        self._history.extend(events)

    def translate(
        self, top_level: Sequence[Mapping[str, Any]], now: datetime
    ) -> tuple[ShimResult, list[tuple[int, Mapping[str, Any]]]]:
        """New actions for the top-level actions after :attr:`settled` (raises NonDeterminismError)."""
        self._history.now = now
        shim = _Shim(self._history, self.instance_id, self.execution_id, self._next_id)
        shim.run(top_level)
        self.settled += shim.settled
        self._next_id = shim.settled_next_id
        return ShimResult(actions=shim.new, next_id=shim.next_id), shim.entity_actions


def top_level_actions(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The SDK state's actions in the order the shim walks them."""
    return _top_level(state)


def completion(
    state: Mapping[str, Any], next_id: int, *, error: str | None
) -> CompleteOrchestration | None:
    """The completion the SDK asked for: failure, continue-as-new, or done with its output."""
    if error is not None:
        failure = FailureDetails(error_type="Exception", error_message=error)
        return CompleteOrchestration(id=next_id, status=OrchestrationStatus.Failed, failure_details=failure)
    if not state.get("isDone"):
        return None
    last = next(reversed(list(_flat(state))), None)
    if last is not None and last.get("actionType") == CONTINUE_AS_NEW:
        return CompleteOrchestration(
            id=next_id, status=OrchestrationStatus.ContinuedAsNew, result=_stored(last.get("input"))
        )
    output = state.get("output")
    return CompleteOrchestration(
        id=next_id, status=OrchestrationStatus.Completed, result=None if output is None else json.dumps(output)
    )


# -------------------------------------------------------------------- helpers
def _top_level(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """V2/V3: ``[[a, b, …]]``; V1 (no ``schemaVersion``): one inner list per yield → a WhenAny each."""
    groups = state.get("actions") or []
    if state.get("schemaVersion"):
        return [a for group in groups for a in group]
    return [
        {"actionType": WHEN_ANY, "compoundActions": group} if len(group) > 1 else group[0]
        for group in groups
        if group
    ]


def _flat(state: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for action in _top_level(state):
        yield from _leaves(action)


def _leaves(action: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if action.get("actionType") in (WHEN_ALL, WHEN_ANY):
        for child in action.get("compoundActions") or []:
            yield from _leaves(child)
    else:
        yield action


def _max_attempts(action: Mapping[str, Any]) -> int:
    return int((action.get("retryOptions") or {}).get("maxNumberOfAttempts") or 1)


def _retry_interval_ms(action: Mapping[str, Any]) -> int:
    return int((action.get("retryOptions") or {}).get("firstRetryIntervalInMilliseconds") or 0)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _stored(value: Any) -> str | None:
    """An orchestration input as DTFx stores the SDK's JSON text: serialised once more."""
    text = _text(value)
    return None if text is None else json.dumps(text)


def _wrap_input(value: Any) -> str:
    """Activity input as the extension stores it: the SDK's JSON text inside a one-item array."""
    return json.dumps([_text(value)])


def _parse_time(text: str) -> datetime:
    cleaned = text.replace("Z", "+00:00")
    if "." in cleaned:
        head, _, tail = cleaned.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        cleaned = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = datetime.fromisoformat(cleaned)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
