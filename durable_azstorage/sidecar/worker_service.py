"""The worker half of ``TaskHubSidecarService``: the work-item stream and the completions.

``GetWorkItems`` registers the stream with the :class:`.Broker` (with the worker's
``maxConcurrent*`` limits) and writes what the broker hands it, plus a ``healthPing`` every
``ping_interval`` seconds of silence (the Python SDK reconnects after 120 s without a message).
``Complete*`` resolve the waiting runtime; the host then commits through the normal DTAS
checkpoint path. ``Abandon*`` and a dropped stream give the work to another worker without
touching storage, so they never count toward poison quarantine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ._proto import pb
from .broker import Broker, Kind, UnknownCompletionToken
from .errors import map_errors

__all__ = ["WorkerService"]

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
PING_INTERVAL = 30.0


class WorkerService:
    def __init__(self, broker: Broker, *, ping_interval: float = PING_INTERVAL) -> None:
        self.broker = broker
        self._ping_interval = ping_interval
        self._partial: dict[str, list[Any]] = {}  # chunked responses (isPartial), by token

    @staticmethod
    def _limits(request: Any) -> dict[Kind, int]:
        orchestrations = request.maxConcurrentOrchestrationWorkItems or DEFAULT_LIMIT
        return {
            Kind.ORCHESTRATION: orchestrations,
            Kind.ACTIVITY: request.maxConcurrentActivityWorkItems or DEFAULT_LIMIT,
            # The Python SDK does not send an entity limit: entities share the orchestration one.
            Kind.ENTITY: request.maxConcurrentEntityWorkItems or orchestrations,
        }

    @staticmethod
    def _filters(request: Any) -> dict[Kind, dict[str, frozenset[str]] | None]:
        """``workItemFilters`` as the durabletask in-memory backend reads them: absent means
        everything; present, each kind lists the names (and versions) the worker takes."""
        if not request.HasField("workItemFilters"):
            return {}
        wf = request.workItemFilters

        def names(filters: Any, lower: bool = False) -> dict[str, frozenset[str]]:
            out: dict[str, frozenset[str]] = {}
            for f in filters:
                key = f.name.lower() if lower else f.name
                out[key] = out.get(key, frozenset()) | frozenset(getattr(f, "versions", ()))
            return out

        return {
            Kind.ORCHESTRATION: names(wf.orchestrations),
            Kind.ACTIVITY: names(wf.activities),
            Kind.ENTITY: names(wf.entities, lower=True),
        }

    async def GetWorkItems(self, request: Any, context: Any) -> AsyncIterator[Any]:
        worker = self.broker.connect(self._limits(request), self._filters(request))
        try:
            while True:
                try:
                    item = await asyncio.wait_for(worker.outbox.get(), self._ping_interval)
                except asyncio.TimeoutError:
                    item = pb.WorkItem(healthPing=pb.HealthPing())
                yield item
        finally:
            # Cancelled (the worker went away or the server stops): its work goes to others.
            for token in list(worker.in_flight):
                self._partial.pop(token, None)
            with contextlib.suppress(Exception):
                self.broker.disconnect(worker)

    async def _complete(self, kind: Kind, token: str, response: Any, key: tuple[str, int | None]) -> Any:
        try:
            self.broker.complete(kind, token, response, key)
        except UnknownCompletionToken:
            log.warning("sidecar.unknown_completion", extra={"kind": kind.value, "instance_id": key[0]})
            raise
        return pb.CompleteTaskResponse()

    @map_errors
    async def CompleteOrchestratorTask(self, request: Any, context: Any) -> Any:
        token = request.completionToken
        if request.isPartial:
            # A large response sent in chunks (.NET SDK): keep the actions until the last one.
            self._partial.setdefault(token, []).extend(request.actions)
            return pb.CompleteTaskResponse()
        earlier = self._partial.pop(token, None)
        if earlier:
            merged = pb.OrchestratorResponse()
            merged.CopyFrom(request)
            del merged.actions[:]
            merged.actions.extend([*earlier, *request.actions])
            request = merged
        return await self._complete(Kind.ORCHESTRATION, token, request, (request.instanceId, None))

    @map_errors
    async def CompleteActivityTask(self, request: Any, context: Any) -> Any:
        key = (request.instanceId, request.taskId)
        return await self._complete(Kind.ACTIVITY, request.completionToken, request, key)

    @map_errors
    async def CompleteEntityTask(self, request: Any, context: Any) -> Any:
        # EntityBatchResult has no instance id: a worker that echoes no token cannot be matched.
        return await self._complete(Kind.ENTITY, request.completionToken, request, ("", None))

    async def _abandon(self, kind: Kind, token: str) -> None:
        self.broker.abandon(kind, token)

    @map_errors
    async def AbandonTaskOrchestratorWorkItem(self, request: Any, context: Any) -> Any:
        await self._abandon(Kind.ORCHESTRATION, request.completionToken)
        return pb.AbandonOrchestrationTaskResponse()

    @map_errors
    async def AbandonTaskActivityWorkItem(self, request: Any, context: Any) -> Any:
        await self._abandon(Kind.ACTIVITY, request.completionToken)
        return pb.AbandonActivityTaskResponse()

    @map_errors
    async def AbandonTaskEntityWorkItem(self, request: Any, context: Any) -> Any:
        await self._abandon(Kind.ENTITY, request.completionToken)
        return pb.AbandonEntityTaskResponse()
