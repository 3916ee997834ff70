"""durabletask-SDK entities (``DurableEntity`` classes and function entities), in-process.

Runs each operation through the SDK's own ``_EntityExecutor`` with its ``StateShim`` (the
same pair the SDK's gRPC worker uses in ``_execute_entity_batch``), so method dispatch,
input typing, ``get_state``/``set_state``, ``signal_entity``, ``schedule_new_orchestration``
and per-operation rollback behave exactly as under the Durable Task Scheduler. Private SDK
API, pinned with the orchestration adapter (:mod:`.durabletask`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timezone
from typing import Any

from durabletask import worker as _dt_worker
from durabletask.entities import EntityInstanceId as _EntityInstanceId
from durabletask.internal import entity_state_shim as _shim
from durabletask.internal import helpers as _dt_helpers
from durabletask.serialization import JsonDataConverter

from ..errors import FunctionNotRegisteredError
from .base import Registry
from .durabletask import from_pb_failure
from .entities import (
    EntityAction,
    EntityBatchRequest,
    EntityBatchResult,
    OperationOutcome,
    SendSignal,
    StartOrchestration,
)

__all__ = ["DurableTaskEntityRuntime", "entity_action_from_pb"]

_log = logging.getLogger(__name__)
_sdk_log = logging.getLogger(__name__ + ".sdk")
if _sdk_log.level == logging.NOTSET:
    _sdk_log.setLevel(logging.WARNING)  # the SDK logs every failing operation with a traceback

dt_worker: Any = _dt_worker
dt_helpers: Any = _dt_helpers
shim: Any = _shim
EntityInstanceId: Any = _EntityInstanceId


def _sdk_registry(registry: Registry) -> Any:
    sdk = dt_worker._Registry()
    for name, fn in registry.entities.items():
        sdk.add_named_entity(name, fn)
    return sdk


def _opt(msg: Any, name: str) -> str | None:
    return str(getattr(msg, name).value) if msg.HasField(name) else None


def entity_action_from_pb(action: Any) -> EntityAction | None:
    kind = action.WhichOneof("operationActionType")
    if kind == "sendSignal":
        a = action.sendSignal
        when = a.scheduledTime.ToDatetime(tzinfo=timezone.utc) if a.HasField("scheduledTime") else None
        return SendSignal(instance_id=a.instanceId, operation=a.name, input=_opt(a, "input"), scheduled_time=when)
    if kind == "startNewOrchestration":
        a = action.startNewOrchestration
        when = a.scheduledTime.ToDatetime(tzinfo=timezone.utc) if a.HasField("scheduledTime") else None
        return StartOrchestration(
            name=a.name,
            instance_id=a.instanceId,
            input=_opt(a, "input"),
            version=_opt(a, "version"),
            scheduled_start_time=when,
        )
    _log.warning("runtime.entity_action_unsupported", extra={"kind": kind})
    return None


class DurableTaskEntityRuntime:
    """Runs entities registered on a :class:`Registry` through the durabletask SDK."""

    def __init__(self, registry: Registry, *, offload: bool = False) -> None:
        self._registry = registry
        self._offload = offload
        self._converter = JsonDataConverter()
        self._cache: Any = None

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult:
        if self._offload:
            return await asyncio.to_thread(self.run_batch_sync, request)
        return self.run_batch_sync(request)

    def run_batch_sync(self, request: EntityBatchRequest) -> EntityBatchResult:
        """Synchronous core of :meth:`run_batch`: one executor and one state shim per batch."""
        entity_id = EntityInstanceId.parse(request.instance_id)
        if entity_id.entity not in self._registry.entities:
            # As Core (TypeMissingException): the batch is retried, not answered with errors,
            # so signals are not lost on a worker deployed without this entity.
            raise FunctionNotRegisteredError("entity", entity_id.entity, sorted(self._registry.entities))
        state = shim.StateShim(request.entity_state, self._converter, is_serialized=True)
        executor = dt_worker._EntityExecutor(_sdk_registry(self._registry), _sdk_log, self._converter)
        results: list[OperationOutcome] = []
        for op in request.operations:
            results.append(self._run_one(executor, request.instance_id, entity_id, op.operation, op.input, state))
        actions = [a for a in (entity_action_from_pb(x) for x in state.get_operation_actions()) if a is not None]
        return EntityBatchResult(results=tuple(results), actions=tuple(actions), entity_state=state.encode_state())

    def _run_one(
        self, executor: Any, instance_id: str, entity_id: Any, operation: str, input: str | None, state: Any
    ) -> OperationOutcome:
        try:
            output = executor.execute(instance_id, entity_id, operation, state, input)
        except Exception as exc:  # user code: reported to the caller, state rolled back
            state.rollback()
            _log.debug("runtime.entity_operation_failed", extra={"instance_id": instance_id, "operation": operation})
            fd = dt_helpers.new_failure_details(exc, None, _sdk_log)
            return OperationOutcome(failure_details=from_pb_failure(fd))
        state.commit()
        return OperationOutcome(result=output)


def entity_names(registry: Registry) -> list[str]:
    """Registered entity names (lower-case, as the SDK normalises them)."""
    return sorted(registry.entities)
