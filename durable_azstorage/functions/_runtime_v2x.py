"""Runtimes for Azure Functions Python apps written with azure-functions-durable 2.x.

The 2.x SDK is built on the durabletask SDK. Under the Functions host its orchestrator trigger
receives a base64 ``OrchestratorRequest`` (an entity trigger: an ``EntityBatchRequest``) as the
context body and its handle — ``async`` in 2.0.0rc3 — returns the base64 response. We build the
request from this engine's history with the converters the gRPC sidecar uses
(:func:`~durable_azstorage.runtimes.durabletask.to_pb_event`) and turn the response back into canonical actions with
:func:`~durable_azstorage.runtimes.durabletask.actions_from_pb`, so checkpoints, entity messages and timers are exactly
the ones in-process durabletask orchestrations and sidecar workers produce.

Activities take and return JSON text with no wrapping (the 1.x extension's one-item array is
a 1.x convention): :class:`~durable_azstorage.runtimes.functions.FunctionsActivityRuntime` with ``legacy_input=False``.
"""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as _pb
from google.protobuf import wrappers_pb2 as _wrappers_pb2  # type: ignore[import-untyped, unused-ignore]

from ..model import ExecutionStartedEvent, FailureDetails, HistoryEvent, OrchestrationStatus
from ..runtimes.actions import CompleteOrchestration
from ..runtimes.base import EpisodeRequest, EpisodeResult
from ..runtimes.durabletask import actions_from_pb
from ..runtimes.entities import EntityBatchRequest, EntityBatchResult, OperationOutcome
from ..sidecar.remote_runtime import _batch_result as batch_result
from ..sidecar.remote_runtime import _events as pb_events

__all__ = ["FunctionsV2EntityRuntime", "FunctionsV2OrchestrationRuntime", "TriggerHandle"]

_log = logging.getLogger(__name__)

pb: Any = _pb


def sv(value: str | None) -> Any:
    """A ``google.protobuf.StringValue`` (unset for ``None``)."""
    return None if value is None else _wrappers_pb2.StringValue(value=value)


def opt(message: Any, name: str) -> str | None:
    return str(getattr(message, name).value) if message.HasField(name) else None


class _TriggerContext:
    """What the Python worker passes for an orchestration/entity trigger: an object with ``body``."""

    def __init__(self, body: str) -> None:
        self.body = body


@dataclass(frozen=True)
class TriggerHandle:
    """A 2.x orchestrator or entity handle and the name of its trigger parameter.

    The SDK renames a parameter called ``context`` (``_durable_input``); the binding name in
    ``get_functions()`` is the one to pass, as the Python worker does.
    """

    function: Callable[..., Any]
    binding_name: str

    async def __call__(self, body: bytes) -> bytes:
        result = self.function(**{self.binding_name: _TriggerContext(base64.b64encode(body).decode("ascii"))})
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, (str, bytes)):
            raise TypeError(f"the trigger returned {type(result).__name__}, not the base64 response text")
        return base64.b64decode(result)


def _by_name(handles: Mapping[str, TriggerHandle]) -> dict[str, TriggerHandle]:
    return {name.lower(): handle for name, handle in handles.items()}


class FunctionsV2OrchestrationRuntime:
    """One episode = one call of the app's orchestrator trigger with an ``OrchestratorRequest``."""

    def __init__(self, orchestrators: Mapping[str, TriggerHandle]) -> None:
        self._handles = _by_name(orchestrators)

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        name = _orchestrator_name([*request.past_events, *request.new_events])
        handle = self._handles.get(name.lower())
        if handle is None:
            known = ", ".join(sorted(self._handles)) or "none"
            return _failed(f"The function '{name}' doesn't exist (registered: {known}).", "FunctionNotFound")
        message = pb.OrchestratorRequest(
            instanceId=request.instance_id,
            executionId=sv(request.execution_id),
            pastEvents=pb_events(request.past_events),
            newEvents=pb_events(request.new_events),
        )
        try:
            raw = await handle(message.SerializeToString())
            response = pb.OrchestratorResponse()
            response.ParseFromString(raw)
        except Exception as exc:  # the SDK's own failure (user code failures come back as actions)
            _log.warning("runtime.functions2_orchestrator_failed",
                         extra={"instance_id": request.instance_id, "error": str(exc)})
            return _failed(f"Orchestrator function '{name}' failed: {type(exc).__name__}: {exc}", type(exc).__name__)
        actions = actions_from_pb(request, response.actions)
        return EpisodeResult(actions=tuple(actions), custom_status=opt(response, "customStatus"))


class FunctionsV2EntityRuntime:
    """One batch = one call of the app's entity trigger with an ``EntityBatchRequest``."""

    def __init__(self, entities: Mapping[str, TriggerHandle]) -> None:
        self._handles = _by_name(entities)

    async def run_batch(self, request: EntityBatchRequest) -> EntityBatchResult:
        name = request.instance_id[1:].split("@", 1)[0]
        handle = self._handles.get(name.lower())
        if handle is None:
            known = ", ".join(sorted(self._handles)) or "none"
            return _failed_batch(request, f"The entity '{name}' doesn't exist (registered: {known}).")
        message = pb.EntityBatchRequest(
            instanceId=request.instance_id,
            entityState=sv(request.entity_state),
            operations=[
                pb.OperationRequest(operation=op.operation, requestId=op.id, input=sv(op.input))
                for op in request.operations
            ],
        )
        try:
            raw = await handle(message.SerializeToString())
            response = pb.EntityBatchResult()
            response.ParseFromString(raw)
        except Exception as exc:
            _log.warning("runtime.functions2_entity_failed",
                         extra={"instance_id": request.instance_id, "error": str(exc)})
            return _failed_batch(request, f"Entity function '{name}' failed: {type(exc).__name__}: {exc}")
        return batch_result(response)


def _orchestrator_name(events: Sequence[HistoryEvent]) -> str:
    started = next((e for e in events if isinstance(e, ExecutionStartedEvent)), None)
    return (started.name if started is not None else None) or ""


def _failed(message: str, error_type: str) -> EpisodeResult:
    failure = FailureDetails(error_type=error_type, error_message=message, is_non_retriable=True)
    return EpisodeResult(
        actions=(CompleteOrchestration(id=-1, status=OrchestrationStatus.Failed, failure_details=failure),)
    )


def _failed_batch(request: EntityBatchRequest, message: str) -> EntityBatchResult:
    """Every operation fails with ``message``; the state stays as it was."""
    failure = FailureDetails(error_type="EntityFunctionFailed", error_message=message)
    return EntityBatchResult(
        results=tuple(OperationOutcome(failure_details=failure) for _ in request.operations),
        actions=(),
        entity_state=request.entity_state,
    )
