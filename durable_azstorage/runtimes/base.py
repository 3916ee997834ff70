"""The small interface between the worker and whatever runs user code.

The worker never imports an SDK: it builds an :class:`EpisodeRequest` from stored history
(see :mod:`.state` for how), awaits :meth:`OrchestrationRuntime.run_episode`, and feeds
the returned canonical actions back into the pure replay state. Activities go through
:meth:`ActivityRuntime.run_activity`. Adapters (``durabletask``, later ``functions`` and
``entities``) implement these protocols; user functions are collected in a
:class:`Registry` first so that name errors surface at start-up, not mid-orchestration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import FunctionAlreadyRegisteredError, FunctionNotRegisteredError
from ..model import FailureDetails, HistoryEvent
from .actions import Action

__all__ = [
    "ActivityResult",
    "ActivityRuntime",
    "EpisodeRequest",
    "EpisodeResult",
    "OrchestrationRuntime",
    "Registry",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EpisodeRequest:
    """One replay of one orchestration execution.

    ``past_events`` is the committed history of the current execution. ``new_events`` is
    what this episode adds, already filtered by :mod:`.state`: it starts with this
    episode's ``OrchestratorStarted`` (its timestamp is the orchestration's clock), then
    the de-duplicated inbound events with ``ExecutionStarted`` first.
    """

    instance_id: str
    execution_id: str
    past_events: Sequence[HistoryEvent]
    new_events: Sequence[HistoryEvent]


@dataclass(frozen=True, kw_only=True)
class EpisodeResult:
    """What user code decided, in the canonical vocabulary of :mod:`.actions`.

    ``actions`` contains every *new* action of this episode (actions already recorded in
    history are not repeated). ``custom_status`` is the JSON text of the custom status, or
    ``None`` when unset.
    """

    actions: Sequence[Action] = field(default_factory=tuple)
    custom_status: str | None = None


@dataclass(frozen=True, kw_only=True)
class ActivityResult:
    """Outcome of one activity: a JSON result string or a failure, never both."""

    result: str | None = None
    failure_details: FailureDetails | None = None

    @property
    def is_failure(self) -> bool:
        return self.failure_details is not None


@runtime_checkable
class OrchestrationRuntime(Protocol):
    """Runs orchestrator code for one episode; must be deterministic and I/O free."""

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult: ...


@runtime_checkable
class ActivityRuntime(Protocol):
    """Runs one activity invocation; user exceptions become ``failure_details``."""

    async def run_activity(
        self, name: str, input: str | None, *, instance_id: str, task_id: int
    ) -> ActivityResult: ...


def _default_name(fn: Callable[..., Any]) -> str:
    # Same rule as the SDKs: the function's own name (durabletask ``task.get_name``).
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"cannot derive a name from {fn!r}; pass name=...")
    return name


class Registry:
    """Orchestrators and activities by name; the user fills it, adapters read it.

    Names are case-sensitive, like the durabletask SDK and DTFx's ``NameVersionObjectManager``.
    """

    def __init__(self) -> None:
        self._orchestrators: dict[str, Callable[..., Any]] = {}
        self._activities: dict[str, Callable[..., Any]] = {}
        self._entities: dict[str, Any] = {}

    def add_orchestrator(self, fn: Callable[..., Any], name: str | None = None) -> str:
        """Register an orchestrator; returns the name it is registered under."""
        return self._add(self._orchestrators, "orchestrator", fn, name)

    def add_activity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        """Register an activity; returns the name it is registered under."""
        return self._add(self._activities, "activity", fn, name)

    def add_entity(self, fn: Any, name: str | None = None) -> str:
        """Register an entity (a function or a class); names are lower-cased as entity ids are."""
        if name is None:
            name = getattr(fn, "__durable_entity_name__", None) or _default_name(fn)
        return self._add(self._entities, "entity", fn, name.lower())

    def get_entity(self, name: str) -> Any:
        """The entity registered as ``name`` (case-insensitive); raises FunctionNotRegisteredError."""
        return self._get(self._entities, "entity", name.lower())

    @property
    def entities(self) -> dict[str, Any]:
        return dict(self._entities)

    def get_orchestrator(self, name: str) -> Callable[..., Any]:
        """The orchestrator registered as ``name``; raises FunctionNotRegisteredError."""
        return self._get(self._orchestrators, "orchestrator", name)

    def get_activity(self, name: str) -> Callable[..., Any]:
        """The activity registered as ``name``; raises FunctionNotRegisteredError."""
        return self._get(self._activities, "activity", name)

    @property
    def orchestrators(self) -> dict[str, Callable[..., Any]]:
        return dict(self._orchestrators)

    @property
    def activities(self) -> dict[str, Callable[..., Any]]:
        return dict(self._activities)

    @staticmethod
    def _add(
        table: dict[str, Callable[..., Any]], kind: str, fn: Callable[..., Any], name: str | None
    ) -> str:
        if not callable(fn):
            raise TypeError(f"{kind} must be callable, got {fn!r}")
        resolved = name if name is not None else _default_name(fn)
        if not resolved:
            raise ValueError(f"{kind} name must not be empty")
        if resolved in table:
            raise FunctionAlreadyRegisteredError(kind, resolved)
        table[resolved] = fn
        _log.debug("runtime.registered", extra={"kind": kind, "function_name": resolved})
        return resolved

    @staticmethod
    def _get(table: dict[str, Callable[..., Any]], kind: str, name: str) -> Callable[..., Any]:
        try:
            return table[name]
        except KeyError:
            raise FunctionNotRegisteredError(kind, name, sorted(table)) from None
