"""Incremental replay for azure-functions-durable 1.x: keep an instance's SDK orchestrator between episodes.

The extension's protocol replays from scratch: every episode the whole history is rendered to
the context JSON, parsed again by the SDK (a ``dateutil`` parse per event) and fed to a new
``TaskOrchestrationExecutor`` running a new generator, so an orchestration of N activities pays
O(N) per episode and O(N²) in total. As :mod:`.durabletask_replay` does for the durabletask
SDK, we keep what one episode built — the executor (with the suspended generator and its
current task) and the ``DurableOrchestrationContext`` (open tasks, actions, counters, clock) —
keyed by instance, with the exact list of model events it consumed. The next episode continues
it only when that list is, object for object, a prefix of the history the worker passes in
(the history came from the worker's cache and the previous episode was committed): the new
events alone are rendered, parsed and fed the way ``TaskOrchestrationExecutor.execute`` feeds
them. Anything else — a reload from storage, another worker's progress, a rewind, an episode
whose new events do not start a new ``OrchestratorStarted`` segment, an SDK error while
feeding, a handle that is not the SDK's own — is a full replay exactly as before.

What a continued executor cannot reproduce bit for bit is what the user code *saw* while it
ran: ``is_replaying`` was False when it first ran, where a full replay shows True; no result
depends on it. The response (actions, output, custom status, error) is the same; the tests in
``tests/unit/test_functions_replay.py`` run every episode both ways and compare.

This module reaches into SDK internals (the executor's ``process_event``, its new-events flag,
the context's history list); :func:`supported` checks they are there and otherwise every
episode is a full replay.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import ExecutionRewoundEvent, HistoryEvent, OrchestratorStartedEvent
from .functions_actions import ActionWalk
from .functions_context import context_json, pascal_event

__all__ = ["Episode", "SdkState", "SessionCache", "call_sdk", "supported"]

_log = logging.getLogger(__name__)
_ERROR_LABEL = "\n\n$OutOfProcData$:"
_SDK_HANDLE = "Orchestrator.create.<locals>.handle"


@dataclass(frozen=True)
class SdkState:
    """What the SDK answered: its state document and, when the orchestrator raised, the error text."""

    state: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Episode:
    """The SDK's answer and the action walk to translate it with.

    ``sdk.state["actions"]`` holds the SDK's actions from ``walk.settled`` on (all of them after a
    full replay, whose walk is new); ``walk`` has folded in every event of the episode.
    """

    sdk: SdkState
    walk: ActionWalk


@dataclass
class _Session:
    executor: Any
    context: Any
    walk: ActionWalk
    first: HistoryEvent | None = None  # the events it consumed: first, last and how many
    last: HistoryEvent | None = None
    count: int = 0

    def consumed_prefix_of(self, past: Sequence[HistoryEvent]) -> bool:
        """Constant time: the worker's history lists only grow by appending the objects an
        episode committed, so the same objects at both ends mean the same prefix (a list rebuilt
        from storage holds new objects everywhere)."""
        n = self.count
        return 0 < n <= len(past) and past[0] is self.first and past[n - 1] is self.last


def _sdk() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(
            importlib.import_module(f"azure.durable_functions.models.{name}")
            for name in ("DurableOrchestrationContext", "TaskOrchestrationExecutor", "history.HistoryEvent")
        )


def supported() -> bool:
    """True when the installed SDK has the internals a continued executor relies on."""
    try:
        ctx_module, executor_module, event_module = _sdk()
    except ImportError:
        return False
    executor = executor_module.TaskOrchestrationExecutor
    return (
        all(hasattr(executor, name) for name in ("execute", "process_event", "get_orchestrator_state_str"))
        and isinstance(getattr(executor, "has_execution_completed", None), property)
        and "_is_processing_new_events" in executor().__dict__
        and hasattr(ctx_module.DurableOrchestrationContext, "from_json")
        and hasattr(event_module, "HistoryEvent")
    )


def call_sdk(run: Callable[[], Any]) -> SdkState:
    """The SDK's state, the way the extension reads an orchestrator's answer (an error carries it)."""
    try:
        output = run()
        state = json.loads(output) if isinstance(output, str) else dict(output)
        return SdkState(state, None)
    except Exception as exc:  # user code: becomes a failed orchestration, never a worker error
        text = str(exc)
        if _ERROR_LABEL in text:
            message, _, data = text.partition(_ERROR_LABEL)
            try:
                return SdkState(json.loads(data), message.strip())
            except ValueError:
                pass
        return SdkState({"isDone": False, "actions": []}, f"{type(exc).__name__}: {text}")


class SessionCache:
    """Runs episodes through an ``Orchestrator.create`` handle, continuing a kept executor when safe.

    ``capacity`` bounds how many suspended orchestrators stay in memory (least recently used go
    first); 0 turns the cache off and every episode is a full replay through the handle.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity if supported() else 0
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._sessions)

    def discard(self, instance_id: str) -> None:
        with self._lock:
            self._sessions.pop(instance_id, None)

    def run(
        self,
        handle: Callable[[str], Any],
        instance_id: str,
        execution_id: str,
        past: Sequence[HistoryEvent],
        new: Sequence[HistoryEvent],
    ) -> Episode:
        """The SDK's answer for one episode: what ``handle(context_json(...))`` answers."""
        with self._lock:
            session = self._sessions.pop(instance_id, None)
        fn = getattr(handle, "orchestrator_function", None)
        if self._capacity <= 0 or fn is None or getattr(handle, "__qualname__", "") != _SDK_HANDLE:
            return _full_walk(call_sdk(lambda: handle(context_json(instance_id, past, new))), instance_id,
                              execution_id, past, new)
        rewound = any(isinstance(e, ExecutionRewoundEvent) for e in new)
        if session is not None and not rewound and session.consumed_prefix_of(past):
            result = self._advance(session, past[session.count:], new)
            if result is not None:
                self.hits += 1
                session.walk.add_events(past[session.count:])
                session.walk.add_events(new)
                return self._keep_if_running(instance_id, session, past, new, result)
        self.misses += 1
        session = self._start(handle, fn, instance_id, execution_id, past, new)
        result = call_sdk(lambda: session.executor.execute(session.context, session.context.histories, fn))
        session.walk.add_events(past)
        session.walk.add_events(new)
        return self._keep_if_running(instance_id, session, past, new, result)

    def _start(
        self,
        handle: Any,
        fn: Any,
        instance_id: str,
        execution_id: str,
        past: Sequence[HistoryEvent],
        new: Sequence[HistoryEvent],
    ) -> _Session:
        """What ``handle`` builds (``Orchestrator.create``), kept where we can reach it afterwards."""
        ctx_module, executor_module, _ = _sdk()
        context = ctx_module.DurableOrchestrationContext.from_json(context_json(instance_id, past, new))
        context._input_expected_type = getattr(handle, "_df_input_type", None)
        return _Session(executor_module.TaskOrchestrationExecutor(), context, ActionWalk(instance_id, execution_id))

    def _advance(
        self, session: _Session, tail: Sequence[HistoryEvent], new: Sequence[HistoryEvent]
    ) -> SdkState | None:
        """Feed only what it has not seen, as ``execute`` feeds a full history; None: replay in full.

        ``tail``: past events committed without this executor seeing them (the actions and the
        ``OrchestratorCompleted`` of its last episode: played, as in a full replay); ``new``: this
        episode's events.
        """
        boundary = _last_orchestrator_started(new)
        if boundary is None:
            return None
        boundary += len(tail)
        _, _, event_module = _sdk()
        executor, context = session.executor, session.context
        try:
            # The same JSON round trip as the full path, so the SDK sees identical values.
            rendered = [pascal_event(e, played=True) for e in tail] + [pascal_event(e, played=False) for e in new]
            events = [event_module.HistoryEvent(**e) for e in json.loads(json.dumps(rendered))]
            context._histories.extend(events)
            executor._is_processing_new_events = False
            for index, event in enumerate(events):
                if index >= boundary:
                    executor._is_processing_new_events = True
                executor.process_event(event)
                if executor.has_execution_completed:
                    break
        except Exception:
            # User exceptions are caught inside the SDK; anything here is the SDK's own
            # complaint, which a full replay reproduces with its exact handling.
            _log.debug("runtime.functions_incremental_replay_abandoned", exc_info=True)
            return None
        return _state_after(context, executor, session.walk.settled)

    def _keep_if_running(
        self,
        instance_id: str,
        session: _Session,
        past: Sequence[HistoryEvent],
        new: Sequence[HistoryEvent],
        result: SdkState,
    ) -> Episode:
        running = result.error is None and not result.state.get("isDone") and not _finished(session.executor)
        if running and _flat_schema(session.context) and (past or new):
            session.first = past[0] if past else new[0]
            session.last = new[-1] if new else past[-1]
            session.count = len(past) + len(new)
            with self._lock:
                self._sessions[instance_id] = session
                while len(self._sessions) > self._capacity:
                    self._sessions.popitem(last=False)
        return Episode(result, session.walk)


def _full_walk(
    sdk: SdkState, instance_id: str, execution_id: str, past: Sequence[HistoryEvent], new: Sequence[HistoryEvent]
) -> Episode:
    walk = ActionWalk(instance_id, execution_id)
    walk.add_events(past)
    walk.add_events(new)
    return Episode(sdk, walk)


def _state_after(context: Any, executor: Any, settled: int) -> SdkState:
    """The state document with the actions from ``settled`` on (the walk skips the others).

    The SDK serialises every action since the start on each call; showing it the unsettled
    tail keeps everything else (output check, error text, custom status) its own doing.
    """
    actions = context._action_payload_v2
    context._action_payload_v2 = actions[settled:]
    try:
        return call_sdk(executor.get_orchestrator_state_str)
    finally:
        context._action_payload_v2 = actions


def _flat_schema(context: Any) -> bool:
    """Schema V2 and later keep one flat action list (what our context asks for); V1 is not continued."""
    schema = getattr(context, "_replay_schema", None)
    return isinstance(getattr(context, "_action_payload_v2", None), list) and getattr(schema, "value", 0) >= 1


def _finished(executor: Any) -> bool:
    try:
        return bool(executor.has_execution_completed)
    except Exception:
        return True


def _last_orchestrator_started(new: Sequence[HistoryEvent]) -> int | None:
    """Index of the last ``OrchestratorStarted`` of the new events: where the SDK's "new" part begins.

    A full replay marks everything from the history's last ``OrchestratorStarted`` as new; when
    the new events hold none, that mark lies in the past, which a continued executor cannot
    reproduce (None: replay in full).
    """
    for index in range(len(new) - 1, -1, -1):
        if isinstance(new[index], OrchestratorStartedEvent):
            return index
    return None
