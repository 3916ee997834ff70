"""The client half of ``TaskHubSidecarService``: every client RPC durabletask 1.12 calls.

Each RPC is the matching :class:`~durable_azstorage.aio.TaskHubClient` operation, i.e. exactly
what DTAS's client does on storage, so instances started through gRPC are ordinary DTAS
instances that any worker of the hub (in-process, sidecar or .NET) runs. Errors become
gRPC status codes with a one-line message (see :mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import grpc

from ..aio import TaskHubClient
from ..codec.names import TaskHubNames
from ..errors import InstanceNotFoundError, InvalidInstanceStateError
from ..model import (
    ExecutionCompletedEvent,
    FailureDetails,
    InstanceQuery,
    OrchestrationState,
    OrchestrationStatus,
    SubOrchestrationInstanceCompletedEvent,
    SubOrchestrationInstanceCreatedEvent,
    SubOrchestrationInstanceFailedEvent,
    utc_now,
)
from ..model.entities import EntityId
from ..model.status import TERMINAL_STATUSES
from ..storage import TaskHubResources
from ..telemetry.propagation import remote_trace_context
from ._proto import history_chunks, opt, opt_time, parse_failure_text, pb, state_pb, sv, ts, wrappers_pb2
from .errors import map_errors, map_stream_errors
from .hints import EpisodeHints
from .hubs import HubClients, task_hub_of

__all__ = ["ClientService"]

log = logging.getLogger(__name__)

_RUNNING = frozenset({OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended})
_ALL_STATUSES = frozenset(OrchestrationStatus)
_FOREVER = 10 * 365 * 24 * 3600.0  # a "deadline" further out than this means none (JS sends none)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _statuses(values: Any) -> list[OrchestrationStatus] | None:
    statuses = [OrchestrationStatus(int(v)) for v in values if int(v) in OrchestrationStatus._value2member_map_]
    return statuses or None


class ClientService:
    """Client RPCs over one or more task hubs (selected by the ``taskhub`` call metadata)."""

    def __init__(
        self, hubs: HubClients, *, poll_max_interval: float = 1.0, hints: EpisodeHints | None = None
    ) -> None:
        self.hubs = hubs
        self._poll_max = poll_max_interval
        self._hints = hints or EpisodeHints()

    async def _client(self, context: Any) -> TaskHubClient:
        return await self.hubs.get(task_hub_of(context))

    # ------------------------------------------------------------------ start / read
    @map_errors
    async def StartInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        start_at = opt_time(request, "scheduledStartTimestamp")
        if start_at is not None and start_at <= utc_now():
            start_at = None  # a start time in the past means now (the JS client always sends epoch 0)
        dedupe = set(_RUNNING)
        if request.HasField("orchestrationIdReusePolicy"):
            replaceable = set(_statuses(request.orchestrationIdReusePolicy.replaceableStatus) or ())
            dedupe = set(_ALL_STATUSES) - replaceable if replaceable else set(_ALL_STATUSES)
        # The caller's context (a 2.x Functions client sends the HTTP request's) parents create_orchestration.
        caller = request.parentTraceContext if request.HasField("parentTraceContext") else None
        traceparent, tracestate = (caller.traceParent, opt(caller, "traceState")) if caller else (None, None)
        with remote_trace_context(traceparent, tracestate):
            instance_id = await client.schedule_new_orchestration(
                request.name,
                instance_id=request.instanceId or None,
                raw_input=opt(request, "input"),
                start_at=start_at,
                tags=dict(request.tags) or None,
                version=opt(request, "version") or None,
                dedupe_statuses=dedupe,
            )
        return pb.CreateInstanceResponse(instanceId=instance_id)

    async def _state_response(
        self, client: TaskHubClient, state: OrchestrationState | None, payloads: bool
    ) -> Any:
        if state is None or state.instance_id.startswith("@"):
            return pb.GetInstanceResponse(exists=False)
        failure = await self._failure_of(client, state) if state.runtime_status == OrchestrationStatus.Failed else None
        converted = state_pb(state, payloads=payloads, failure=failure)
        return pb.GetInstanceResponse(exists=True, orchestrationState=converted)

    @staticmethod
    async def _failure_of(client: TaskHubClient, state: OrchestrationState) -> FailureDetails:
        """The full failure (type, message, stack, inner) from history; the row keeps only text."""
        try:
            history = await client.get_orchestration_history(state.instance_id)
        except InstanceNotFoundError:
            history = []
        for event in reversed(history):
            if isinstance(event, ExecutionCompletedEvent) and event.failure_details is not None:
                return event.failure_details
        return parse_failure_text(state.output)

    @map_errors
    async def GetInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        payloads = bool(request.getInputsAndOutputs)
        state = await client.get_orchestration_state(request.instanceId, fetch_payloads=payloads)
        return await self._state_response(client, state, payloads)

    @map_errors
    async def WaitForInstanceStart(self, request: Any, context: Any) -> Any:
        return await self._wait(request, context, lambda s: s.runtime_status != OrchestrationStatus.Pending)

    @map_errors
    async def WaitForInstanceCompletion(self, request: Any, context: Any) -> Any:
        return await self._wait(request, context, lambda s: s.runtime_status in TERMINAL_STATUSES)

    async def _wait(self, request: Any, context: Any, done: Any) -> Any:
        """Poll the Instances row (0.05 s doubling to ``poll_max_interval``) until ``done``.

        No deadline means wait as long as the caller stays connected; a deadline ends with
        ``DEADLINE_EXCEEDED`` (the SDKs turn that into their timeout error).
        """
        client = await self._client(context)
        payloads = bool(request.getInputsAndOutputs)
        remaining = context.time_remaining()
        loop = asyncio.get_running_loop()
        deadline = None if remaining is None or remaining > _FOREVER else loop.time() + max(0.0, remaining - 0.05)
        with self._hints.watch(request.instanceId) as hinted:
            delay = 0.05
            while True:
                state = await client.get_orchestration_state(request.instanceId, fetch_payloads=payloads)
                if state is None or state.runtime_status is None or done(state):
                    return await self._state_response(client, state, payloads)
                if deadline is not None and loop.time() >= deadline:
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"instance {request.instanceId!r} is still {state.runtime_status.name}",
                    )
                pause = delay if deadline is None else max(0.0, min(delay, deadline - loop.time()))
                delay = min(delay * 2, self._poll_max)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(hinted.wait(), pause)
                    hinted.clear()  # an episode of this instance just ran here: poll closely again
                    delay = 0.05

    # ------------------------------------------------------------------ management
    @map_errors
    async def RaiseEvent(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        await client.raise_event(request.instanceId, request.name, raw_data=opt(request, "input"))
        return pb.RaiseEventResponse()

    @map_errors
    async def TerminateInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        output = opt(request, "output")
        await self._terminate(client, request.instanceId, output, recursive=bool(request.recursive), top=True)
        return pb.TerminateResponse()

    async def _terminate(
        self, client: TaskHubClient, instance_id: str, output: str | None, *, recursive: bool, top: bool
    ) -> None:
        state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
        if state is None:
            if top:
                raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
            return
        if state.runtime_status in TERMINAL_STATUSES:
            return  # already final: terminating again changes nothing (idempotent, as DTAS)
        children = await self._open_children(client, instance_id) if recursive else []
        try:
            # The parent first, so it ends Terminated rather than failing on a terminated child.
            # TaskHubClient JSON-encodes the reason; the protocol's output is JSON text already.
            await client.terminate(instance_id, _decoded(output))
        except InvalidInstanceStateError:
            pass  # finished meanwhile; its children may still run
        for child in children:
            await self._terminate(client, child, output, recursive=True, top=False)

    @staticmethod
    async def _children(client: TaskHubClient, instance_id: str) -> tuple[list[str], list[str]]:
        """Sub-orchestration ids of the current execution: (all created, still open)."""
        try:
            history = await client.get_orchestration_history(instance_id)
        except InstanceNotFoundError:
            return [], []
        created = {e.event_id: e.instance_id for e in history if isinstance(e, SubOrchestrationInstanceCreatedEvent)}
        closed = {
            e.task_scheduled_id
            for e in history
            if isinstance(e, (SubOrchestrationInstanceCompletedEvent, SubOrchestrationInstanceFailedEvent))
        }
        everyone = [i for i in created.values() if i]
        still_open = [i for eid, i in created.items() if i and eid not in closed]
        return everyone, still_open

    async def _open_children(self, client: TaskHubClient, instance_id: str) -> list[str]:
        return (await self._children(client, instance_id))[1]

    @map_errors
    async def SuspendInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        state = await self._require(client, request.instanceId)
        if state.runtime_status != OrchestrationStatus.Suspended:  # suspending twice is a no-op
            await client.suspend(request.instanceId, opt(request, "reason"))
        return pb.SuspendResponse()

    @map_errors
    async def ResumeInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        state = await self._require(client, request.instanceId)
        if state.runtime_status not in (OrchestrationStatus.Running, OrchestrationStatus.Pending):
            await client.resume(request.instanceId, opt(request, "reason"))
        return pb.ResumeResponse()

    @staticmethod
    async def _require(client: TaskHubClient, instance_id: str) -> OrchestrationState:
        state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
        if state is None:
            raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
        return state

    @map_errors
    async def RewindInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        await client.rewind(request.instanceId, opt(request, "reason"))
        return pb.RewindInstanceResponse()

    @map_errors
    async def RestartInstance(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        state = await self._require(client, request.instanceId)
        if state.runtime_status not in TERMINAL_STATUSES:
            status = state.runtime_status.name if state.runtime_status is not None else "unknown"
            raise InvalidInstanceStateError(
                f"instance {request.instanceId!r} is {status}; only a finished instance can be restarted"
            )
        new_id = await client.restart(request.instanceId, new_instance_id=bool(request.restartWithNewInstanceId))
        return pb.RestartInstanceResponse(instanceId=new_id)

    # ------------------------------------------------------------------ queries
    @map_errors
    async def QueryInstances(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        q = request.query
        prefix = opt(q, "instanceIdPrefix")
        query = InstanceQuery.of(
            runtime_status=_statuses(q.runtimeStatus),
            created_from=opt_time(q, "createdTimeFrom"),
            created_to=opt_time(q, "createdTimeTo"),
            instance_id_prefix=prefix or None,
            exclude_entities=True,
            page_size=min(q.maxInstanceCount or 100, 1000),
            fetch_payloads=bool(q.fetchInputsAndOutputs),
        )
        page = await client.query_instances(query, continuation_token=opt(q, "continuationToken") or None)
        # Entities live in the same table; orchestration queries never show them.
        states = [s for s in page.instances if not s.instance_id.startswith("@")]
        return pb.QueryInstancesResponse(
            orchestrationState=[state_pb(s, payloads=bool(q.fetchInputsAndOutputs)) for s in states],
            continuationToken=sv(page.continuation_token),
        )

    @map_errors
    async def ListInstanceIds(self, request: Any, context: Any) -> Any:
        """Ids of finished instances; ``completedTime*`` filter the page the store returned."""
        client = await self._client(context)
        statuses = [s for s in (_statuses(request.runtimeStatus) or TERMINAL_STATUSES) if s in TERMINAL_STATUSES]
        if not statuses:
            return pb.ListInstanceIdsResponse()
        low, high = opt_time(request, "completedTimeFrom"), opt_time(request, "completedTimeTo")
        query = InstanceQuery.of(
            runtime_status=statuses, exclude_entities=True, page_size=min(request.pageSize or 100, 1000),
            fetch_payloads=False,
        )
        page = await client.query_instances(query, continuation_token=opt(request, "lastInstanceKey") or None)
        ids = [
            s.instance_id
            for s in page.instances
            if not s.instance_id.startswith("@")
            and (low is None or (s.completed_time is not None and s.completed_time >= low))
            and (high is None or (s.completed_time is not None and s.completed_time < high))
        ]
        return pb.ListInstanceIdsResponse(instanceIds=ids, lastInstanceKey=sv(page.continuation_token))

    @map_stream_errors
    async def StreamInstanceHistory(self, request: Any, context: Any) -> AsyncIterator[Any]:
        client = await self._client(context)
        wanted = opt(request, "executionId")
        state = await self._require(client, request.instanceId)
        if wanted and state.execution_id and wanted != state.execution_id:
            raise InstanceNotFoundError(
                f"instance {request.instanceId!r} has no execution {wanted!r} (only the latest is kept)"
            )
        events = await client.get_orchestration_history(request.instanceId)
        for chunk in history_chunks(events):
            yield chunk

    # ------------------------------------------------------------------ purge
    @map_errors
    async def PurgeInstances(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        if request.instanceId:
            count = await self._purge_one(client, request.instanceId, recursive=bool(request.recursive))
        elif request.HasField("purgeInstanceFilter"):
            f = request.purgeInstanceFilter
            result = await client.purge_instances(
                created_from=opt_time(f, "createdTimeFrom") or _EPOCH,
                created_to=opt_time(f, "createdTimeTo"),
                runtime_status=_statuses(f.runtimeStatus),
            )
            count = result.instances_deleted
        else:
            raise ValueError("PurgeInstances needs an instanceId or a purgeInstanceFilter")
        return pb.PurgeInstancesResponse(deletedInstanceCount=count, isComplete=wrappers_pb2.BoolValue(value=True))

    async def _purge_one(self, client: TaskHubClient, instance_id: str, *, recursive: bool) -> int:
        state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
        if state is None:
            return 0
        if state.runtime_status not in TERMINAL_STATUSES:
            status = state.runtime_status.name if state.runtime_status is not None else "unknown"
            raise InvalidInstanceStateError(
                f"instance {instance_id!r} is {status}; terminate it or wait for it to finish before purging"
            )
        count = 0
        if recursive:
            for child in (await self._children(client, instance_id))[0]:
                child_state = await client.get_orchestration_state(child, fetch_payloads=False)
                if child_state is not None and child_state.runtime_status in TERMINAL_STATUSES:
                    count += await self._purge_one(client, child, recursive=True)
        await client.purge_instance(instance_id)
        return count + 1

    # ------------------------------------------------------------------ entities
    @map_errors
    async def SignalEntity(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        await client.signal_entity(
            EntityId.parse(request.instanceId),
            request.name,
            raw_input=opt(request, "input"),
            signal_time=opt_time(request, "scheduledTime"),
        )
        return pb.SignalEntityResponse()

    @map_errors
    async def GetEntity(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        metadata = await client.get_entity(EntityId.parse(request.instanceId), include_state=request.includeState)
        if metadata is None:
            return pb.GetEntityResponse(exists=False)
        return pb.GetEntityResponse(exists=True, entity=_entity_pb(metadata, bool(request.includeState)))

    @map_errors
    async def QueryEntities(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        q = request.query
        page = await client.list_entities(
            instance_id_starts_with=opt(q, "instanceIdStartsWith") or None,
            last_operation_from=opt_time(q, "lastModifiedFrom"),
            last_operation_to=opt_time(q, "lastModifiedTo"),
            include_state=bool(q.includeState),
            include_transient=bool(q.includeTransient),
            page_size=q.pageSize.value if q.HasField("pageSize") and q.pageSize.value > 0 else 100,
            continuation_token=opt(q, "continuationToken") or None,
        )
        return pb.QueryEntitiesResponse(
            entities=[_entity_pb(m, bool(q.includeState)) for m in page.entities],
            continuationToken=sv(page.continuation_token),
        )

    @map_errors
    async def CleanEntityStorage(self, request: Any, context: Any) -> Any:
        client = await self._client(context)
        result = await client.clean_entity_storage(
            remove_empty_entities=bool(request.removeEmptyEntities),
            release_orphaned_locks=bool(request.releaseOrphanedLocks),
            continuation_token=opt(request, "continuationToken") or None,
        )
        return pb.CleanEntityStorageResponse(
            continuationToken=sv(result.continuation_token),
            emptyEntitiesRemoved=result.empty_entities_removed,
            orphanedLocksReleased=result.orphaned_locks_released,
        )

    # ------------------------------------------------------------------ task hub
    @map_errors
    async def CreateTaskHub(self, request: Any, context: Any) -> Any:
        """Creates the hub's queues, tables and containers (``recreateIfExists`` deletes first)."""
        name = task_hub_of(context) or self.hubs.default_hub
        hub = TaskHubResources(self.hubs.account, TaskHubNames(name))
        if request.recreateIfExists:
            await hub.delete()
            self.hubs.forget(name)
        await hub.create()
        return pb.CreateTaskHubResponse()

    @map_errors
    async def DeleteTaskHub(self, request: Any, context: Any) -> Any:
        name = task_hub_of(context) or self.hubs.default_hub
        await TaskHubResources(self.hubs.account, TaskHubNames(name)).delete()
        self.hubs.forget(name)
        return pb.DeleteTaskHubResponse()


def _decoded(output: str | None) -> Any:
    if output is None:
        return None
    try:
        return json.loads(output)
    except ValueError:
        return output


def _entity_pb(metadata: Any, include_state: bool) -> Any:
    fields: dict[str, Any] = {
        "instanceId": metadata.entity_id.instance_id,
        "backlogQueueSize": metadata.backlog_queue_size,
        "lockedBy": sv(metadata.locked_by),
    }
    if metadata.last_operation_time is not None:
        fields["lastModifiedTime"] = ts(metadata.last_operation_time)
    if include_state:
        fields["serializedState"] = sv(metadata.state)
    return pb.EntityMetadata(**fields)
