"""azure-functions-durable (1.x) entities and the entity actions of Functions orchestrators.

**Entities.** A Functions entity is ``df.Entity.create(fn)``: it takes the Durable Functions
extension's entity context JSON (``EntityTriggerAttributeBindingProvider.EntityContextToString``:
``{"self":{"name","key"},"exists","state","batch":[{"name","input","isSignal"}]}``, each input
JSON-encoded twice) and returns ``{"entityExists","entityState","results":[{"isError","result"}],
"signals"}`` (the SDK's ``Entity.handle`` protocol). :class:`FunctionsEntityRuntime` drives that handle
in-process, **one operation per call**: the 1.x SDK neither rolls back a failed operation's
state change nor resets the result between operations, so running each operation on the
state the previous *successful* one left gives the rollback and isolation of Core's
``TaskEntity`` (a failed operation's state change is discarded).

Entities may be functions ``fn(context: df.DurableEntityContext)`` (``context.get_state``,
``set_state``, ``operation_name``, ``get_input``, ``set_result``, ``destruct_on_exit``), the
handles ``df.Entity.create`` returns, or classes (class-based dispatch: the operation name is
the method, the instance's attributes are the state, ``delete`` removes the state unless the
class defines it).

**Orchestrators.** :func:`entity_send_event` turns a Functions orchestrator's ``CallEntity``
(7) or ``SignalEntity`` (9) action into the canonical ``SendEvent`` of the DTFx encoding
(``EventSent "op"`` + request JSON); the request id is derived from the instance, execution and
action id, so a re-run of an uncommitted episode asks with the same id.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..errors import FunctionNotRegisteredError
from ..model import FailureDetails
from ..model.entities import EntityId
from .actions import SendEvent
from .entities import EntityBatchRequest, EntityBatchResult, OperationOutcome
from .entities_orchestration import EntityMessageEncoder

__all__ = ["CALL_ENTITY_ACTION", "SIGNAL_ENTITY_ACTION", "FunctionsEntityRuntime", "entity_send_event"]

_log = logging.getLogger(__name__)

CALL_ENTITY_ACTION = 7  # azure-functions-durable ActionType.CALL_ENTITY
SIGNAL_ENTITY_ACTION = 9  # ActionType.SIGNAL_ENTITY
_REQUEST_ID_NAMESPACE = uuid.UUID("5d5f2a33-7f4c-4f0e-9d0a-6a7c1e0b8f21")


def _handle_for(entity: Any) -> Callable[[str], str]:
    """The ``handle(context_json) -> result_json`` of a function, class or existing handle."""
    import azure.durable_functions as df

    if getattr(entity, "entity_function", None) is not None or _is_sdk_handle(entity):
        handle: Callable[[str], str] = entity  # already df.Entity.create(fn)
        return handle
    if inspect.isclass(entity):
        return df.Entity.create(_class_dispatch(entity))  # type: ignore[no-any-return]
    return df.Entity.create(entity)  # type: ignore[no-any-return]


def _is_sdk_handle(entity: Any) -> bool:
    # What @app.entity_trigger registers (and v1's ``main = df.Entity.create(fn)``).
    return getattr(entity, "__qualname__", "") == "Entity.create.<locals>.handle"


def _class_dispatch(cls: type) -> Callable[[Any], None]:
    """Class-based entities: methods are operations, public attributes are the state."""

    def dispatch(context: Any) -> None:
        operation = context.operation_name
        saved = context.get_state(lambda: None)
        obj: Any = object.__new__(cls)
        if isinstance(saved, dict):
            obj.__dict__.update(saved)
        else:
            obj.__init__()
        method = getattr(obj, operation, None) if not operation.startswith("_") else None
        if method is None or not callable(method):
            if operation.lower() == "delete":
                context.destruct_on_exit()
                return
            raise AttributeError(f"entity class {cls.__name__} has no operation {operation!r}")
        value = context.get_input()
        result = method(value) if value is not None else method()
        context.set_state({k: v for k, v in vars(obj).items() if not k.startswith("_")})
        context.set_result(result)

    dispatch.__name__ = cls.__name__
    return dispatch


class FunctionsEntityRuntime:
    """Runs azure-functions-durable entities registered by name (names are lower-cased)."""

    def __init__(self, entities: Mapping[str, Any]) -> None:
        self._handles = {name.lower(): _handle_for(entity) for name, entity in entities.items()}

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult:
        return await asyncio.to_thread(self.run_batch_sync, request)

    def run_batch_sync(self, request: EntityBatchRequest) -> EntityBatchResult:
        entity_id = EntityId.parse(request.instance_id)
        handle = self._handles.get(entity_id.name.lower())
        if handle is None:
            raise FunctionNotRegisteredError("entity", entity_id.name, sorted(self._handles))
        state = request.entity_state
        results: list[OperationOutcome] = []
        for op in request.operations:
            outcome, new_state, exists = self._run_one(handle, entity_id, state, op.operation, op.input)
            results.append(outcome)
            if not outcome.is_failure:
                state = new_state if exists else None
        return EntityBatchResult(results=tuple(results), entity_state=state)

    @staticmethod
    def _run_one(
        handle: Callable[[str], str], entity_id: EntityId, state: str | None, operation: str, input: str | None
    ) -> tuple[OperationOutcome, str | None, bool]:
        context = {
            "self": {"name": entity_id.name, "key": entity_id.key},
            "exists": state is not None,
            "state": state,
            "batch": [{"name": operation, "input": json.dumps(input), "isSignal": False}],
        }
        try:
            output = json.loads(handle(json.dumps(context)))
            result = output["results"][0]
        except Exception as exc:  # an SDK-level error (bad JSON, internal exception)
            _log.debug("runtime.functions_entity_failed", extra={"instance_id": str(entity_id)})
            return _failure(type(exc).__name__, str(exc)), state, state is not None
        text = result.get("result")
        if result.get("isError"):
            message = json.loads(text) if isinstance(text, str) else text
            return _failure("Error", str(message)), state, state is not None
        exists = bool(output.get("entityExists"))
        new_state = output.get("entityState")
        return OperationOutcome(result=text), new_state if isinstance(new_state, str) else None, exists


def _failure(error_type: str, message: str) -> OperationOutcome:
    return OperationOutcome(failure_details=FailureDetails(error_type=error_type, error_message=message))


def entity_send_event(
    action: Mapping[str, Any],
    action_id: int,
    encoder: EntityMessageEncoder,
    *,
    now: datetime,
    scheduled_time: datetime | None = None,
) -> SendEvent:
    """A Functions ``CallEntity``/``SignalEntity`` action as the DTFx ``EventSent "op"``.

    ``action`` is the action JSON (``{"actionType", "instanceId": "@name@key", "operation",
    "input"}``); ``input`` is already the SDK's JSON text. Raises ``ValueError`` for other
    action types or a malformed entity id.
    """
    kind = action.get("actionType")
    if kind not in (CALL_ENTITY_ACTION, SIGNAL_ENTITY_ACTION):
        raise ValueError(f"action type {kind!r} is not an entity action")
    target = str(EntityId.parse(str(action.get("instanceId", ""))))
    request_id = uuid.uuid5(_REQUEST_ID_NAMESPACE, f"{encoder.instance_id}\n{encoder.execution_id}\n{action_id}")
    raw_input = action.get("input")
    return encoder.operation(
        action_id,
        target=target,
        operation=str(action.get("operation") or ""),
        input=raw_input if isinstance(raw_input, str) or raw_input is None else json.dumps(raw_input),
        request_id=str(request_id),
        signal=kind == SIGNAL_ENTITY_ACTION,
        scheduled_time=scheduled_time,
        now=now,
    )
