"""Incremental replay for the durabletask SDK: keep an instance's orchestrator alive between episodes.

The SDK's ``_OrchestrationExecutor.execute`` replays the whole history into a new generator on
every episode, so an orchestration that has run N activities pays O(N) per episode and O(N²) in
total (a 1,000-activity fan-in spends most of its time here). DTFx's answer is "extended
sessions": the orchestrator stays in memory and only new events are fed to it. We do the same:
after an episode the SDK context (with its suspended generator) is kept, keyed by instance, with
the exact list of model events it has consumed. The next episode continues it only if that list
is, object for object, a prefix of the history the worker passes in — which holds exactly when
the previous episode was committed and the history came from the worker's cache. Anything else
(a reload from storage, a conflict, held events, rewind, another worker's progress) fails the
check and the episode is replayed from scratch as before, so results never differ.

This module reaches into SDK internals (the context class and ``process_event``); the version
is pinned in ``pyproject.toml`` and ``tests/unit/test_durabletask_replay.py`` compares every
episode of the replay test orchestrations against a full replay.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from durabletask import worker as dt_worker

from ..model import HistoryEvent

__all__ = ["IncrementalReplayer"]

_log = logging.getLogger(__name__)

PbConverter = Callable[[Sequence[HistoryEvent]], list[Any]]


@dataclass
class _Session:
    executor: Any
    context: Any
    fed: list[HistoryEvent] = field(default_factory=list)


class IncrementalReplayer:
    """Runs episodes through the SDK, continuing a cached orchestrator when it is safe.

    ``capacity`` bounds how many suspended orchestrators stay in memory (least recently used
    go first); 0 turns the cache off and every episode is a full replay.
    """

    def __init__(
        self,
        new_executor: Callable[[], Any],
        new_context: Callable[[str], Any],
        to_pb: PbConverter,
        *,
        capacity: int = 1000,
    ) -> None:
        self._new_executor = new_executor
        self._new_context = new_context
        self._to_pb = to_pb
        self._capacity = capacity
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def discard(self, instance_id: str) -> None:
        with self._lock:
            self._sessions.pop(instance_id, None)

    def execute(
        self, instance_id: str, past: Sequence[HistoryEvent], new: Sequence[HistoryEvent]
    ) -> Any:
        """The SDK's ``ExecutionResults`` for one episode (same as a full ``execute``)."""
        pb_new = self._to_pb(new)
        if self._capacity <= 0 or any(e.HasField("executionRewound") for e in pb_new):
            self.discard(instance_id)
            return self._full(instance_id, past, pb_new)
        session, tail = self._resume(instance_id, past)
        results = self._advance(session, self._to_pb(tail), pb_new)
        if results is None:
            # Outside the ``except`` block on purpose: an exception raised again by the full
            # replay must not carry ours as its ``__context__`` (the SDK reports that chain).
            return self._full(instance_id, past, pb_new)
        if not session.context._is_complete:
            session.fed = [*past, *new]
            self._keep(instance_id, session)
        return results

    def _resume(self, instance_id: str, past: Sequence[HistoryEvent]) -> tuple[_Session, Sequence[HistoryEvent]]:
        with self._lock:
            session = self._sessions.pop(instance_id, None)
        if session is not None and _is_prefix(session.fed, past):
            self.hits += 1
            return session, past[len(session.fed):]
        self.misses += 1
        executor = self._new_executor()
        executor._orchestration_name = _orchestration_name(past)
        return _Session(executor, self._new_context(instance_id)), past

    def _advance(self, session: _Session, replay: list[Any], fresh: list[Any]) -> Any | None:
        """Feed events the way ``execute`` does; None means "let the SDK replay it all"."""
        executor, ctx = session.executor, session.context
        try:
            ctx._is_replaying = True
            for event in replay:
                executor.process_event(ctx, event)
            ctx._is_replaying = False
            for event in fresh:
                executor.process_event(ctx, event)
        except Exception:
            # The SDK turns user exceptions into a failed orchestration, with version checks
            # first; a full replay reproduces its exact handling (deterministic code).
            _log.debug("runtime.incremental_replay_abandoned", exc_info=True)
            return None
        return dt_worker.ExecutionResults(
            actions=ctx.get_actions(),
            encoded_custom_status=ctx._encoded_custom_status,
            orchestration_trace_context=ctx._orchestration_trace_context,
        )

    def _full(self, instance_id: str, past: Sequence[HistoryEvent], pb_new: list[Any]) -> Any:
        return self._new_executor().execute(instance_id, self._to_pb(past), pb_new)

    def _keep(self, instance_id: str, session: _Session) -> None:
        with self._lock:
            self._sessions[instance_id] = session
            while len(self._sessions) > self._capacity:
                self._sessions.popitem(last=False)


def _is_prefix(fed: Sequence[HistoryEvent], past: Sequence[HistoryEvent]) -> bool:
    """Constant time: the worker's history lists only ever grow by appending the objects an
    episode committed, so the same object at both ends of ``fed`` means the same prefix (a list
    rebuilt from storage holds new objects everywhere)."""
    n = len(fed)
    if n == 0 or n > len(past):
        return n == 0
    return past[0] is fed[0] and past[n - 1] is fed[n - 1]


def _orchestration_name(past: Sequence[HistoryEvent]) -> str:
    from ..model import ExecutionStartedEvent

    started = next((e for e in past if isinstance(e, ExecutionStartedEvent)), None)
    return (started.name if started is not None else None) or "<unknown>"
