"""The repairs ``doctor --repair`` may apply: each named, idempotent, and conditional.

Every write is guarded so a live worker always wins: table writes use ``If-Match`` with the eTag
the scan read (a worker that touched the row since makes the repair skip, HTTP 412), lease rows
are released only while still expired and by eTag, blobs are deleted by eTag, and messages sent
are ones the receiver de-duplicates (a start with the row's own execution id, an entity release
that only frees a lock still held by that finished instance). Running a repair twice is harmless:
the second scan no longer finds the problem, or the conditional write skips.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from ..codec import entity_codec, history_codec, instance_codec, table_columns
from ..codec.names import TaskHubNames
from ..codec.queue_codec import MessageData
from ..model import (
    EventRaisedEvent,
    ExecutionStartedEvent,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    TaskMessage,
)
from ..model.entities import RELEASE_EVENT_NAME, ReleaseMessage
from ..storage import LeaseConflictError, TaskHubResources, TaskHubStorage
from ..storage.queues import next_sequence_number
from .findings import Finding, RepairOutcome, RepairResult
from .hub_snapshot import HubSnapshot

__all__ = ["REPAIRS", "apply_repairs"]

log = logging.getLogger(__name__)

_CLIENT_SENDER = OrchestrationInstance(instance_id="", execution_id="")
Repair = Callable[[TaskHubStorage, HubSnapshot, dict[str, Any]], Awaitable[RepairResult]]


def _result(name: str, target: str, outcome: RepairOutcome, detail: str = "") -> RepairResult:
    log.info("doctor.repair", extra={"repair": name, "target": target, "outcome": outcome.value, "detail": detail})
    return RepairResult(name, target, outcome, detail)


def _is_precondition_failure(exc: HttpResponseError) -> bool:
    return exc.status_code in (409, 412)


# --------------------------------------------------------------------------- resources and leases
async def create_missing_resources(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    names = TaskHubNames(hub.names.task_hub, s.partition_count or hub.names.partition_count)
    await TaskHubResources(hub.account, names).create()  # idempotent: existing resources are kept
    return _result("create-missing-resources", item["id"], RepairOutcome.FIXED, f"created {item.get('kind')}")


async def release_expired_lease(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name = "release-expired-lease"
    if not item.get("repairable"):
        return _result(name, item["id"], RepairOutcome.SKIPPED, "already free: a running worker will claim it")
    lease = next((row for row in await hub.partitions.read_all() if row.name == item["id"]), None)
    if lease is None:
        return _result(name, item["id"], RepairOutcome.SKIPPED, "lease row is gone")
    if lease.current_owner is not None and lease.expires_at is not None and lease.expires_at > s.now:
        return _result(name, item["id"], RepairOutcome.SKIPPED, f"renewed by {lease.current_owner} meanwhile")
    lease.current_owner = lease.next_owner = None
    lease.is_draining = False
    try:
        await hub.partitions.replace(lease)
    except LeaseConflictError:
        return _result(name, item["id"], RepairOutcome.SKIPPED, "changed since read (a worker took it)")
    return _result(name, item["id"], RepairOutcome.FIXED, "released; any running worker claims it now")


# --------------------------------------------------------------------------- instances
async def sync_status_from_history(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name, instance_id = "sync-status-from-history", item["id"]
    load = await hub.history.load(instance_id)
    if not load.events or load.execution_id is None or load.execution_id != item.get("rowExecutionId"):
        return _result(name, instance_id, RepairOutcome.SKIPPED, "history changed since the scan")
    row = await _row_from_history(hub, instance_id, load.execution_id, load.events)
    row.pop("CustomStatus", None)  # keep what the orchestration last set
    try:
        await _instances(hub).update_entity(
            row, mode=UpdateMode.MERGE, etag=item["etag"], match_condition=MatchConditions.IfNotModified
        )
    except ResourceNotFoundError:
        return _result(name, instance_id, RepairOutcome.SKIPPED, "row was deleted meanwhile")
    except HttpResponseError as exc:
        if _is_precondition_failure(exc):
            return _result(name, instance_id, RepairOutcome.SKIPPED, "row changed since the scan (a worker is on it)")
        raise
    return _result(name, instance_id, RepairOutcome.FIXED, f"{item.get('rowStatus')} -> {row.get('RuntimeStatus')}")


async def recreate_instance_row(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name, instance_id = "recreate-instance-row", item["id"]
    load = await hub.history.load(instance_id)
    if not load.events or load.execution_id is None:
        return _result(name, instance_id, RepairOutcome.SKIPPED, "no history to rebuild from")
    row = await _row_from_history(hub, instance_id, load.execution_id, load.events)
    try:
        await _instances(hub).create_entity(row)  # insert only: never overwrites a row
    except ResourceExistsError:
        return _result(name, instance_id, RepairOutcome.SKIPPED, "a row exists now")
    return _result(name, instance_id, RepairOutcome.FIXED, f"row re-created as {row.get('RuntimeStatus')}")


async def _row_from_history(
    hub: TaskHubStorage, instance_id: str, execution_id: str, events: list[HistoryEvent]
) -> dict[str, Any]:
    """The row a checkpoint of the whole history would have written (DTAS repair path)."""
    last = events[-1].timestamp
    row = instance_codec.instance_update_for_checkpoint(
        events, instance_id=instance_id, execution_id=execution_id, custom_status=None,
        task_hub_name=hub.names.task_hub, now=last,
    )
    for column in table_columns.oversized_properties({k: v for k, v in row.items() if k in ("Input", "Output")}):
        blob = history_codec.history_property_blob_name(str(row["PartitionKey"]), "", column, column)
        await hub.payloads.upload_text(blob, str(row[column]))
        row[column] = hub.payloads.url_for(blob)
    return row


async def resend_start_message(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name, instance_id = "resend-start-message", item["id"]
    record = await hub.instances.get(instance_id)
    if record is None or record.etag != item["etag"]:
        return _result(name, instance_id, RepairOutcome.SKIPPED, "row changed since the scan")
    state = record.state
    if state.runtime_status is not OrchestrationStatus.Pending or not state.execution_id:
        return _result(name, instance_id, RepairOutcome.SKIPPED, "row is not Pending with an execution id")
    instance = OrchestrationInstance(instance_id=instance_id, execution_id=state.execution_id)
    started = ExecutionStartedEvent(
        orchestration_instance=instance, name=state.name, version=state.version, input=state.input,
        tags=state.tags, generation=state.generation, timestamp=state.created_time or s.now,
    )
    await _send(hub, started, instance)
    return _result(name, instance_id, RepairOutcome.FIXED, f"start message re-sent (execution {state.execution_id})")


# --------------------------------------------------------------------------- entities and blobs
async def release_entity_lock(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name, entity_id, holder = "release-entity-lock", item["id"], item["lockedBy"]
    record = await hub.instances.get(entity_id, fetch_input=False, fetch_output=False)
    status = entity_codec.decode_entity_status(record.state.custom_status) if record else None
    if status is None or status.locked_by != holder:
        return _result(name, entity_id, RepairOutcome.SKIPPED, "lock has moved on since the scan")
    release = ReleaseMessage(parent_instance_id=holder, id=str(uuid.uuid4()))
    event = EventRaisedEvent(name=RELEASE_EVENT_NAME, input=entity_codec.encode_release(release))
    await _send(hub, event, OrchestrationInstance(instance_id=entity_id))
    return _result(name, entity_id, RepairOutcome.FIXED, f"release sent on behalf of {holder}")


async def delete_orphaned_blob(hub: TaskHubStorage, s: HubSnapshot, item: dict[str, Any]) -> RepairResult:
    name, blob = "delete-orphaned-blob", item["id"]
    if not item.get("repairable"):
        return _result(name, blob, RepairOutcome.SKIPPED, "too young to be sure")
    client = hub.blob_service.get_blob_client(hub.names.large_messages_container, blob)
    try:
        await client.delete_blob(etag=item["etag"], match_condition=MatchConditions.IfNotModified)
    except ResourceNotFoundError:
        return _result(name, blob, RepairOutcome.SKIPPED, "already gone")
    except HttpResponseError as exc:
        if _is_precondition_failure(exc):
            return _result(name, blob, RepairOutcome.SKIPPED, "rewritten since the scan")
        raise
    return _result(name, blob, RepairOutcome.FIXED, "deleted")


async def _send(hub: TaskHubStorage, event: HistoryEvent, instance: OrchestrationInstance) -> None:
    message = MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(event=event, orchestration_instance=instance),
        sequence_number=next_sequence_number(),
        sender=_CLIENT_SENDER,
    )
    await hub.control_queue_for(instance.instance_id).send(message, visibility_delay=None)


def _instances(hub: TaskHubStorage) -> Any:
    return hub.table_service.get_table_client(hub.names.instances_table)


REPAIRS: dict[str, Repair] = {
    "create-missing-resources": create_missing_resources,
    "release-expired-lease": release_expired_lease,
    "sync-status-from-history": sync_status_from_history,
    "recreate-instance-row": recreate_instance_row,
    "resend-start-message": resend_start_message,
    "release-entity-lock": release_entity_lock,
    "delete-orphaned-blob": delete_orphaned_blob,
}


async def apply_repairs(hub: TaskHubStorage, snapshot: HubSnapshot, findings: list[Finding]) -> list[RepairResult]:
    """Apply each finding's repair to each of its items; a failure is reported, never raised."""
    results: list[RepairResult] = []
    for finding in findings:
        repair = REPAIRS.get(finding.repair or "")
        if repair is None or not finding.count:
            continue
        if finding.repair == "create-missing-resources":
            results.append(await _guarded(repair, hub, snapshot, finding.items[0], finding.repair))
            continue
        for item in finding.items:
            results.append(await _guarded(repair, hub, snapshot, item, finding.repair or ""))
    return results


async def _guarded(
    repair: Repair, hub: TaskHubStorage, snapshot: HubSnapshot, item: dict[str, Any], name: str
) -> RepairResult:
    try:
        return await repair(hub, snapshot, item)
    except Exception as exc:  # one failed repair must not stop the others; it is reported
        log.exception("doctor.repair_failed", extra={"repair": name, "target": item.get("id")})
        return RepairResult(name, str(item.get("id")), RepairOutcome.FAILED, str(exc).splitlines()[0][:300])

