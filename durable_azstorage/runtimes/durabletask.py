"""Adapter for the durabletask Python SDK (``durabletask==1.12.*``), in-process, no sidecar.

The only module that imports ``durabletask``. It converts our model history into the SDK's
protobuf ``HistoryEvent``s, runs the SDK's own replay engine (``worker._OrchestrationExecutor``)
and activity executor, and converts the protobuf actions back into canonical actions. These
are private SDK APIs, which is why the version is pinned and
``tests/unit/test_durabletask_contract.py`` fails loudly when they change.

Behaviour choices:

* the executor runs with ``maximum_timer_interval=None``: the SDK emits one ``createTimer``
  with the final ``fireAt`` and the pure state chains long timers underneath
  (see :mod:`.state`), so SDK sequence ids never depend on a backend limit;
* JSON payloads pass through as the exact strings the SDK produced or stored;
* entity calls, signals and critical sections become ``SendEvent`` actions in the legacy DTFx
  encoding (:mod:`.entities_orchestration`), which the SDK itself replays from ``EventSent``;
* proto actions this provider does not support yet (terminating other instances, rewind) fail
  the orchestration with ``NotSupportedError`` instead of being silently dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timezone
from typing import Any

from durabletask import task as _dt_task
from durabletask import worker as _dt_worker
from durabletask.internal import helpers as _dt_helpers
from durabletask.internal import orchestrator_service_pb2 as _pb
from durabletask.internal import tracing as _sdk_tracing
from durabletask.internal import type_discovery as _type_discovery
from durabletask.serialization import JsonDataConverter
from google.protobuf import json_format as _json_format  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import struct_pb2 as _struct_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import timestamp_pb2 as _timestamp_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import wrappers_pb2 as _wrappers_pb2  # type: ignore[import-untyped, unused-ignore]

from .. import model as m
from ..errors import FunctionNotRegisteredError
from .actions import (
    Action,
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from .base import ActivityResult, EpisodeRequest, EpisodeResult, Registry
from .durabletask_replay import IncrementalReplayer
from .entities_orchestration import EntityMessageEncoder

__all__ = [
    "DurableTaskActivityRuntime",
    "DurableTaskOrchestrationRuntime",
    "SUPPORTED_SDK_VERSION",
    "actions_from_pb",
    "from_pb_action",
    "from_pb_failure",
    "to_pb_event",
    "to_pb_failure",
]

SUPPORTED_SDK_VERSION = "1.12"
"""Major.minor of durabletask whose private executor API this adapter was written against."""

_log = logging.getLogger(__name__)
_sdk_log = logging.getLogger(__name__ + ".sdk")
if _sdk_log.level == logging.NOTSET:
    # The executor builds debug summaries whenever its logger level is <= DEBUG (NOTSET is 0),
    # and logs every episode at INFO: that is per-episode chatter, so WARNING by default.
    _sdk_log.setLevel(logging.WARNING)

# The boundary is typed here, not by the SDK: generated protobuf code is dynamic, and the
# executor classes are private. Everything crossing it is converted immediately.
pb: Any = _pb
dt_task: Any = _dt_task
dt_worker: Any = _dt_worker
dt_helpers: Any = _dt_helpers
type_discovery: Any = _type_discovery
json_format: Any = _json_format
struct_pb2: Any = _struct_pb2
timestamp_pb2: Any = _timestamp_pb2
wrappers_pb2: Any = _wrappers_pb2

PbEvent = Any  # pb.HistoryEvent; the generated module is untyped at the boundary
PbAction = Any  # pb.OrchestratorAction
PbFailure = Any  # pb.TaskFailureDetails


# ---------------------------------------------------------------------------- primitives
def _ts(value: datetime) -> Any:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(_naive_utc(value))
    return ts


def _naive_utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _from_ts(ts: Any) -> datetime:
    value: datetime = ts.ToDatetime(tzinfo=timezone.utc)
    return value


def _sv(value: str | None) -> Any:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def _opt(msg: Any, name: str) -> str | None:
    """A ``StringValue`` field as ``str | None`` (unset stays None; '' stays '')."""
    return str(getattr(msg, name).value) if msg.HasField(name) else None


def _instance_pb(inst: m.OrchestrationInstance | None) -> Any:
    if inst is None:
        return None
    return pb.OrchestrationInstance(instanceId=inst.instance_id, executionId=_sv(inst.execution_id))


# ---------------------------------------------------------------------------- failures
def to_pb_failure(fd: m.FailureDetails) -> PbFailure:
    """Our FailureDetails as the SDK's ``TaskFailureDetails`` (recursive)."""
    props = {k: json_format.ParseDict(v, struct_pb2.Value()) for k, v in (fd.properties or {}).items()}
    return pb.TaskFailureDetails(
        errorType=fd.error_type,
        errorMessage=fd.error_message,
        stackTrace=_sv(fd.stack_trace),
        innerFailure=to_pb_failure(fd.inner_failure) if fd.inner_failure else None,
        isNonRetriable=fd.is_non_retriable,
        properties=props,
    )


def from_pb_failure(fd: PbFailure) -> m.FailureDetails:
    """The SDK's ``TaskFailureDetails`` as our FailureDetails (recursive)."""
    props = {k: json_format.MessageToDict(v) for k, v in fd.properties.items()}
    return m.FailureDetails(
        error_type=fd.errorType,
        error_message=fd.errorMessage,
        stack_trace=_opt(fd, "stackTrace"),
        inner_failure=from_pb_failure(fd.innerFailure) if fd.HasField("innerFailure") else None,
        is_non_retriable=fd.isNonRetriable,
        properties=props or None,
    )


def _failure_of(fd: m.FailureDetails | None, reason: str | None, details: str | None) -> PbFailure:
    """DTFx histories may carry only Reason/Details (e.g. a terminated sub-orchestration)."""
    if fd is not None:
        return to_pb_failure(fd)
    return pb.TaskFailureDetails(errorType="", errorMessage=reason or "", stackTrace=_sv(details))


# ---------------------------------------------------------------------------- model -> pb
def _started_pb(e: m.ExecutionStartedEvent) -> dict[str, Any]:
    parent = e.parent_instance
    fields: dict[str, Any] = {
        "name": e.name or "",
        "version": _sv(e.version),
        "input": _sv(e.input),
        "orchestrationInstance": _instance_pb(e.orchestration_instance),
        "tags": dict(e.tags or {}),
    }
    if parent is not None:
        fields["parentInstance"] = pb.ParentInstanceInfo(
            taskScheduledId=parent.task_schedule_id,
            name=_sv(parent.name),
            version=_sv(parent.version),
            orchestrationInstance=_instance_pb(parent.orchestration_instance),
        )
    if e.scheduled_start_time is not None:
        fields["scheduledStartTimestamp"] = _ts(e.scheduled_start_time)
    ctx = e.parent_trace_context
    if ctx is not None and ctx.trace_parent:  # the SDK parents its orchestration span on it
        fields["parentTraceContext"] = pb.TraceContext(traceParent=ctx.trace_parent, traceState=_sv(ctx.trace_state))
    return {"executionStarted": pb.ExecutionStartedEvent(**fields)}


def _pb_trace_context(ctx: m.DistributedTraceContext | None) -> Any:
    """The SDK emits an activity's CLIENT span on its completion from this (suppressed in-process)."""
    if ctx is None or not ctx.trace_parent:
        return None
    return pb.TraceContext(traceParent=ctx.trace_parent, traceState=_sv(ctx.trace_state))


def _completed_pb(e: m.ExecutionCompletedEvent) -> dict[str, Any]:
    fd = to_pb_failure(e.failure_details) if e.failure_details else None
    return {
        "executionCompleted": pb.ExecutionCompletedEvent(
            orchestrationStatus=int(e.orchestration_status), result=_sv(e.result), failureDetails=fd
        )
    }


_PAYLOAD: dict[type[m.HistoryEvent], Callable[[Any], dict[str, Any]]] = {
    m.ExecutionStartedEvent: _started_pb,
    m.ExecutionCompletedEvent: _completed_pb,
    m.ContinueAsNewEvent: _completed_pb,
    m.ExecutionTerminatedEvent: lambda e: {"executionTerminated": pb.ExecutionTerminatedEvent(input=_sv(e.input))},
    m.TaskScheduledEvent: lambda e: {
        "taskScheduled": pb.TaskScheduledEvent(
            name=e.name or "", version=_sv(e.version), input=_sv(e.input), tags=dict(e.tags or {}),
            parentTraceContext=_pb_trace_context(e.parent_trace_context),
        )
    },
    m.TaskCompletedEvent: lambda e: {
        "taskCompleted": pb.TaskCompletedEvent(taskScheduledId=e.task_scheduled_id, result=_sv(e.result))
    },
    m.TaskFailedEvent: lambda e: {
        "taskFailed": pb.TaskFailedEvent(
            taskScheduledId=e.task_scheduled_id, failureDetails=_failure_of(e.failure_details, e.reason, e.details)
        )
    },
    m.SubOrchestrationInstanceCreatedEvent: lambda e: {
        "subOrchestrationInstanceCreated": pb.SubOrchestrationInstanceCreatedEvent(
            instanceId=e.instance_id or "", name=e.name or "", version=_sv(e.version),
            input=_sv(e.input), tags=dict(e.tags or {}),
        )
    },
    m.SubOrchestrationInstanceCompletedEvent: lambda e: {
        "subOrchestrationInstanceCompleted": pb.SubOrchestrationInstanceCompletedEvent(
            taskScheduledId=e.task_scheduled_id, result=_sv(e.result)
        )
    },
    m.SubOrchestrationInstanceFailedEvent: lambda e: {
        "subOrchestrationInstanceFailed": pb.SubOrchestrationInstanceFailedEvent(
            taskScheduledId=e.task_scheduled_id, failureDetails=_failure_of(e.failure_details, e.reason, e.details)
        )
    },
    m.TimerCreatedEvent: lambda e: {"timerCreated": pb.TimerCreatedEvent(fireAt=_ts(e.fire_at))},
    m.TimerFiredEvent: lambda e: {"timerFired": pb.TimerFiredEvent(timerId=e.timer_id, fireAt=_ts(e.fire_at))},
    m.OrchestratorStartedEvent: lambda e: {"orchestratorStarted": pb.OrchestratorStartedEvent()},
    m.OrchestratorCompletedEvent: lambda e: {"orchestratorCompleted": pb.OrchestratorCompletedEvent()},
    m.EventSentEvent: lambda e: {
        "eventSent": pb.EventSentEvent(instanceId=e.instance_id or "", name=e.name or "", input=_sv(e.input))
    },
    m.EventRaisedEvent: lambda e: {"eventRaised": pb.EventRaisedEvent(name=e.name or "", input=_sv(e.input))},
    m.ExecutionSuspendedEvent: lambda e: {"executionSuspended": pb.ExecutionSuspendedEvent(input=_sv(e.reason))},
    m.ExecutionResumedEvent: lambda e: {"executionResumed": pb.ExecutionResumedEvent(input=_sv(e.reason))},
}


def to_pb_event(event: m.HistoryEvent) -> PbEvent | None:
    """One model event as a protobuf ``HistoryEvent``; ``None`` for kinds the SDK never replays.

    (HistoryState, ExecutionFailed and ExecutionRewound are skipped: DTAS does not write the
    first two, and rewind is not supported by this adapter yet. GenericEvent is skipped as
    DTFx's executor ignores it: DTAS rewind turns failure rows into GenericEvent rows and
    wakes the instance with a GenericEvent message, and the SDK would reject the type.)
    """
    convert = _PAYLOAD.get(type(event))
    if convert is None:
        return None
    return pb.HistoryEvent(eventId=event.event_id, timestamp=_ts(event.timestamp), **convert(event))


def _to_pb_events(events: Iterable[m.HistoryEvent]) -> list[PbEvent]:
    return [p for p in (to_pb_event(e) for e in events) if p is not None]


# ---------------------------------------------------------------------------- pb -> model
def _carryover(events: Iterable[PbEvent]) -> tuple[m.HistoryEvent, ...]:
    out: list[m.HistoryEvent] = []
    for e in events:
        if e.HasField("eventRaised"):
            out.append(m.EventRaisedEvent(name=e.eventRaised.name, input=_opt(e.eventRaised, "input")))
        else:
            _log.warning("runtime.carryover_skipped", extra={"event_kind": e.WhichOneof("eventType")})
    return tuple(out)


def _complete_from_pb(action_id: int, c: Any) -> CompleteOrchestration:
    return CompleteOrchestration(
        id=action_id,
        status=m.OrchestrationStatus(int(c.orchestrationStatus)),
        result=_opt(c, "result"),
        failure_details=from_pb_failure(c.failureDetails) if c.HasField("failureDetails") else None,
        carryover_events=_carryover(c.carryoverEvents),
        new_version=_opt(c, "newVersion"),
    )


def from_pb_action(action: PbAction, *, keep_trace_context: bool = False) -> Action:
    """One protobuf ``OrchestratorAction`` as a canonical action (raises NotImplementedError).

    ``keep_trace_context``: the action's ``parentTraceContext`` is the SDK worker's CLIENT span
    and is kept only from a worker that emits its spans (a remote one); the in-process SDK's
    emission is suppressed, and its actions carry the orchestration's *parent* context instead.
    """
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        a = action.scheduleTask
        return ScheduleTask(
            id=action.id, name=a.name, version=_opt(a, "version"), input=_opt(a, "input"), tags=dict(a.tags) or None,
            trace_context=_trace_context_of(a) if keep_trace_context else None,
        )
    if kind == "createTimer":
        return CreateTimer(id=action.id, fire_at=_from_ts(action.createTimer.fireAt))
    if kind == "createSubOrchestration":
        a = action.createSubOrchestration
        return CreateSubOrchestration(
            id=action.id, name=a.name, instance_id=a.instanceId, version=_opt(a, "version"),
            input=_opt(a, "input"), tags=dict(a.tags) or None,
            trace_context=_trace_context_of(a) if keep_trace_context else None,
        )
    if kind == "sendEvent":
        a = action.sendEvent
        return SendEvent(
            id=action.id, instance_id=a.instance.instanceId, name=a.name, data=_opt(a, "data"),
            execution_id=_opt(a.instance, "executionId") or None,
        )
    if kind == "completeOrchestration":
        return _complete_from_pb(action.id, action.completeOrchestration)
    raise NotImplementedError(f"orchestrator action {kind!r} is not supported by durable_azstorage yet")


def _trace_context_of(a: Any) -> m.DistributedTraceContext | None:
    if not a.HasField("parentTraceContext") or not a.parentTraceContext.traceParent:
        return None
    ctx = a.parentTraceContext
    return m.DistributedTraceContext(trace_parent=ctx.traceParent, trace_state=_opt(ctx, "traceState"))


def _entity_action(action: PbAction, encoder: EntityMessageEncoder, now: datetime) -> Action:
    """A ``sendEntityMessage`` action in the legacy DTFx encoding (EventSent "op"/"release")."""
    msg = action.sendEntityMessage
    kind = msg.WhichOneof("EntityMessageType")
    if kind in ("entityOperationSignaled", "entityOperationCalled"):
        a = getattr(msg, kind)
        return encoder.operation(
            action.id,
            target=a.targetInstanceId.value,
            operation=a.operation,
            input=_opt(a, "input"),
            request_id=a.requestId,
            signal=kind == "entityOperationSignaled",
            scheduled_time=_from_ts(a.scheduledTime) if a.HasField("scheduledTime") else None,
            now=now,
        )
    if kind == "entityLockRequested":
        a = msg.entityLockRequested
        return encoder.lock(action.id, request_id=a.criticalSectionId, lock_set=list(a.lockSet), now=now)
    if kind == "entityUnlockSent":
        a = msg.entityUnlockSent
        return encoder.unlock(action.id, request_id=a.criticalSectionId, target=a.targetInstanceId.value)
    raise NotImplementedError(f"entity message {kind!r} is not supported by durable_azstorage yet")


def _convert_actions(
    actions: Sequence[PbAction],
    encoder: EntityMessageEncoder | None = None,
    now: datetime | None = None,
    keep_trace_context: bool = False,
) -> list[Action]:
    out: list[Action] = []
    for action in actions:
        try:
            if action.WhichOneof("orchestratorActionType") == "sendEntityMessage" and encoder is not None:
                out.append(_entity_action(action, encoder, now or datetime.now(timezone.utc)))
                continue
            out.append(from_pb_action(action, keep_trace_context=keep_trace_context))
        except NotImplementedError as exc:
            _log.warning("runtime.action_unsupported", extra={"action_id": action.id, "error": str(exc)})
            failure = m.FailureDetails(error_type="NotSupportedError", error_message=str(exc), is_non_retriable=True)
            failed = m.OrchestrationStatus.Failed
            out.append(CompleteOrchestration(id=action.id, status=failed, failure_details=failure))
            break
    return out


def actions_from_pb(
    request: EpisodeRequest, pb_actions: Iterable[PbAction], *, keep_trace_context: bool = False
) -> list[Action]:
    """The protobuf actions of one episode as canonical actions (entity messages in DTFx form).

    Shared by the in-process runtime and the gRPC sidecar, whose remote workers answer with
    the same ``OrchestratorAction`` messages.
    """
    pb_list = list(pb_actions)
    needs_encoder = any(a.WhichOneof("orchestratorActionType") == "sendEntityMessage" for a in pb_list)
    # The encoder scans the whole history: build it only for episodes that message entities.
    encoder = EntityMessageEncoder(
        request.instance_id, request.execution_id, request.past_events, request.new_events
    ) if needs_encoder else None
    now = next((e.timestamp for e in request.new_events if isinstance(e, m.OrchestratorStartedEvent)), None)
    return _convert_actions(pb_list, encoder, now, keep_trace_context)


# ---------------------------------------------------------------------------- runtimes
def _sdk_registry(registry: Registry) -> Any:
    sdk = dt_worker._Registry()
    for name, fn in registry.orchestrators.items():
        sdk.add_named_orchestrator(name, fn)
    for name, fn in registry.activities.items():
        sdk.add_named_activity(name, fn)
    return sdk


class DurableTaskOrchestrationRuntime:
    """Runs durabletask orchestrators through the SDK's own replay engine.

    ``offload=True`` replays in a worker thread (useful for very long histories); by default
    the replay runs inline, since orchestrator code must be fast and non-blocking anyway.
    """

    def __init__(self, registry: Registry, *, offload: bool = False, sticky_capacity: int = 1000) -> None:
        self._registry = registry
        self._offload = offload
        self._converter = JsonDataConverter()
        self._sdk_registry: Any = None
        self._sdk_registry_size = -1
        self.replayer = IncrementalReplayer(
            self._new_executor, self._new_context, _to_pb_events, capacity=sticky_capacity
        )

    def _registry_for_sdk(self) -> Any:
        # Rebuilt only when functions were added, not on every episode.
        size = len(self._registry.orchestrators) + len(self._registry.activities)
        if self._sdk_registry is None or size != self._sdk_registry_size:
            self._sdk_registry, self._sdk_registry_size = _sdk_registry(self._registry), size
        return self._sdk_registry

    def _new_executor(self) -> Any:
        return dt_worker._OrchestrationExecutor(
            self._registry_for_sdk(), _sdk_log, self._converter, maximum_timer_interval=None
        )

    def _new_context(self, instance_id: str) -> Any:
        return dt_worker._RuntimeOrchestrationContext(
            instance_id, self._registry_for_sdk(), self._converter, maximum_timer_interval=None, logger=_sdk_log
        )

    async def run_episode(self, request: EpisodeRequest) -> EpisodeResult:
        if self._offload:
            return await asyncio.to_thread(self.run_episode_sync, request)
        return self.run_episode_sync(request)

    def run_episode_sync(self, request: EpisodeRequest) -> EpisodeResult:
        """The synchronous core of :meth:`run_episode` (deterministic, no I/O)."""
        # The SDK's executor would emit client/timer/event spans of its own; the worker emits them
        # (once per committed episode, parented to the orchestration span), so silence the SDK's.
        with _sdk_tracing.suppress_span_emission():
            results = self.replayer.execute(request.instance_id, request.past_events, request.new_events)
        actions = actions_from_pb(request, results.actions)
        _log.debug(
            "runtime.episode_executed",
            extra={"instance_id": request.instance_id, "action_count": len(actions)},
        )
        return EpisodeResult(actions=tuple(actions), custom_status=results.encoded_custom_status)


class DurableTaskActivityRuntime:
    """Runs durabletask activities: sync ones in a thread pool, ``async def`` ones awaited.

    User exceptions (and unknown activity names, as DTFx does) become ``failure_details``
    shaped exactly as the SDK's own worker shapes them.
    """

    def __init__(self, registry: Registry, *, executor: Executor | None = None) -> None:
        self._registry = registry
        self._executor = executor
        self._converter = JsonDataConverter()

    async def run_activity(
        self, name: str, input: str | None, *, instance_id: str, task_id: int
    ) -> ActivityResult:
        try:
            fn = self._registry.get_activity(name)
            if inspect.iscoroutinefunction(fn):
                output = await self._run_async(fn, input, instance_id, task_id)
            else:
                output = await self._run_sync(name, input, instance_id, task_id)
        except Exception as exc:  # user code: every failure is reported, never raised
            level = logging.WARNING if isinstance(exc, FunctionNotRegisteredError) else logging.DEBUG
            _log.log(level, "runtime.activity_failed", extra={"activity": name, "instance_id": instance_id})
            fd = dt_helpers.new_failure_details(exc, None, _sdk_log)
            return ActivityResult(failure_details=from_pb_failure(fd))
        return ActivityResult(result=output)

    async def _run_sync(self, name: str, input: str | None, instance_id: str, task_id: int) -> str | None:
        sdk_executor = dt_worker._ActivityExecutor(_sdk_registry(self._registry), _sdk_log, self._converter)
        loop = asyncio.get_running_loop()
        result: str | None = await loop.run_in_executor(
            self._executor, sdk_executor.execute, instance_id, name, task_id, input
        )
        return result

    async def _run_async(
        self, fn: Callable[..., Any], input: str | None, instance_id: str, task_id: int
    ) -> str | None:
        input_type = type_discovery.activity_input_type(fn, self._converter) if input else None
        value = self._converter.deserialize(input, input_type)
        output = await fn(dt_task.ActivityContext(instance_id, task_id), value)
        encoded: str | None = self._converter.serialize(output)
        return encoded
