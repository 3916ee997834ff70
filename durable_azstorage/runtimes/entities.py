"""The entity side of the runtime interface: run one batch of operations on one entity.

The worker's entity processor (:mod:`durable_azstorage.worker.entities`) decides *which*
operations run (ordering, locks, batching, scheduled signals) and persists the outcome; an
:class:`EntityRuntime` only runs user code. Contract, as Core's ``TaskEntity``:

* operations run one at a time, in order, each seeing the state the previous one left;
* a failing operation reports ``failure_details`` and its own state change and outbound
  actions are rolled back; the batch continues;
* ``entity_state`` of the result is the JSON after the batch, ``None`` when the entity was
  deleted (or never got state);
* ``results`` may be shorter than ``operations`` only when ``failure_details`` says why the
  rest could not run (the processor reports the error to those callers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias, runtime_checkable

from ..model import FailureDetails

__all__ = [
    "EntityAction",
    "EntityBatchRequest",
    "EntityBatchResult",
    "EntityOperation",
    "EntityRuntime",
    "EntityRuntimeByName",
    "OperationOutcome",
    "SendSignal",
    "StartOrchestration",
]


@dataclass(frozen=True, kw_only=True)
class EntityOperation:
    """One operation to run: its name, JSON input, the request id it answers and its caller's context.

    ``trace_parent`` is the W3C ``traceparent`` of the caller's span (the request's
    ``parentTraceContext``), so a runtime that emits its own operation spans can parent them.
    """

    operation: str
    input: str | None = None
    id: str = ""
    is_signal: bool = True
    trace_parent: str | None = None


@dataclass(frozen=True, kw_only=True)
class OperationOutcome:
    """What one operation returned: a JSON result, or a failure."""

    result: str | None = None
    failure_details: FailureDetails | None = None

    @property
    def is_failure(self) -> bool:
        return self.failure_details is not None


@dataclass(frozen=True, kw_only=True)
class SendSignal:
    """An entity signalling another entity (one-way), optionally at a later time."""

    instance_id: str
    operation: str
    input: str | None = None
    scheduled_time: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class StartOrchestration:
    """An entity starting an orchestration (fire and forget)."""

    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None
    scheduled_start_time: datetime | None = None


EntityAction: TypeAlias = SendSignal | StartOrchestration


@dataclass(frozen=True, kw_only=True)
class EntityBatchRequest:
    instance_id: str
    entity_state: str | None
    operations: Sequence[EntityOperation]


@dataclass(frozen=True, kw_only=True)
class EntityBatchResult:
    results: Sequence[OperationOutcome] = field(default_factory=tuple)
    actions: Sequence[EntityAction] = field(default_factory=tuple)
    entity_state: str | None = None
    failure_details: FailureDetails | None = None


@runtime_checkable
class EntityRuntime(Protocol):
    """Runs entity operations; user exceptions become per-operation failures, never raise."""

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult: ...


class EntityRuntimeByName:
    """Routes each entity name to its runtime (e.g. Functions entities next to durabletask ones).

    Names are compared lower-cased; an unknown name goes to ``default`` (which reports it as
    not registered when it does not know it either).
    """

    def __init__(self, routes: Mapping[str, EntityRuntime], default: EntityRuntime) -> None:
        self._routes = {name.lower(): runtime for name, runtime in routes.items()}
        self._default = default

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult:
        name = request.instance_id[1:].split("@", 1)[0].lower()
        return await self._routes.get(name, self._default).run_batch(request)
