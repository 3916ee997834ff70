"""The read-only half of ``doctor``: read a hub into a :class:`HubSnapshot`.

Only reads: list and query tables, peek queues (peeking never changes visibility or dequeue
counts, so a live worker is not disturbed), list blobs. Works on any hub in the DTAS layout,
including one written by .NET (v3 lease rows or v1/v2 lease blobs, ``taskhub.json``).

Limits, stated in the report: a peek sees at most the first 32 *visible* messages of a queue,
so messages a worker holds or that back off are not inspected; histories are read for live
instances only (terminal rows are taken at their word).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from ..codec import entity_codec, instance_codec
from ..codec.names import TaskHubNames
from ..codec.odata import odata_string
from ..codec.partitioning import SENTINEL_ROW_KEY, escape_partition_key, unescape_partition_key
from ..codec.queue_codec import decode_message_data
from ..errors import MessageDecodeError, TaskHubNotFoundError
from ..model import OrchestrationStatus, utc_now
from ..storage import TaskHubStorage
from .hub_snapshot import (
    BlobFact,
    BlobLeaseFact,
    DoctorOptions,
    HistoryFact,
    HubSnapshot,
    InstanceFact,
    PeekedMessage,
    PoisonFact,
    QueueFact,
)

__all__ = ["LIMITS", "Progress", "scan_hub", "summarise_history"]

Progress = Callable[[str], None]
PEEK_MAX = 32
HISTORY_READS_IN_PARALLEL = 8
LIMITS = [
    f"queues: only the first {PEEK_MAX} visible messages of each queue are peeked",
    "histories are read for Running, Pending and Suspended instances untouched for --horizon only",
]
_INSTANCE_SELECT = [
    "PartitionKey", "RuntimeStatus", "ExecutionId", "CreatedTime", "LastUpdatedTime",
    "ScheduledStartTime", "CustomStatus",
]
_LIVE_OR_ENTITY = (
    "RuntimeStatus eq 'Running' or RuntimeStatus eq 'Pending' or RuntimeStatus eq 'Suspended'"
    " or (PartitionKey ge '@' and PartitionKey lt 'A')"
)
_HISTORY_SELECT = ["RowKey", "EventType", "ExecutionId", "OrchestrationStatus", "_Timestamp"]
_LIVE = (OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended)
_STATUS_BY_EVENT = {
    "ExecutionStarted": OrchestrationStatus.Running,
    "ExecutionTerminated": OrchestrationStatus.Terminated,
    "ContinueAsNew": OrchestrationStatus.ContinuedAsNew,
}


def _none(_: str) -> None:
    return None


async def scan_hub(
    hub: TaskHubStorage, *, progress: Progress = _none, options: DoctorOptions | None = None
) -> HubSnapshot:
    """Read everything the rules look at; :class:`TaskHubNotFoundError` when nothing of the hub exists.

    ``options.full_scan=False`` reads only live Instances rows and entities; histories are read only
    for live rows untouched for ``options.horizon`` (the only ones the rules judge).
    """
    opts = options or DoctorOptions()
    full = opts.full_scan
    names = hub.names
    snapshot = HubSnapshot(task_hub=names.task_hub, now=utc_now(), partition_count=None)
    progress("tables and queues")
    await _scan_resources(hub, snapshot)
    progress("partition leases")
    await _scan_leases(hub, snapshot)
    if snapshot.tables.get(names.instances_table):
        await _scan_instances(hub, snapshot, progress, None if full else _LIVE_OR_ENTITY)
        if not full:
            await _read_lock_holders(hub, snapshot)
    if snapshot.tables.get(names.history_table):
        await _scan_histories(hub, snapshot, progress, opts)
    progress("quarantined messages")
    snapshot.poison = [
        PoisonFact(r.queue_name, r.message_id, r.instance_id, r.event_type, r.reason, r.dequeue_count,
                   r.quarantined_at)
        async for r in hub.poison.list()
    ]
    if full and snapshot.containers.get(names.large_messages_container):
        progress("large-message blobs")
        container = hub.blob_service.get_container_client(names.large_messages_container)
        snapshot.blobs = [
            BlobFact(b.name, b.last_modified, str(b.etag)) async for b in container.list_blobs()
        ]
    return snapshot


# --------------------------------------------------------------------------- resources and queues
async def _scan_resources(hub: TaskHubStorage, s: HubSnapshot) -> None:
    names = hub.names
    existing_tables = {t.name.lower() async for t in hub.table_service.list_tables()}
    for table in (names.history_table, names.instances_table, names.partitions_table, names.poison_table):
        s.tables[table] = table.lower() in existing_tables
    queue_names = {q.name async for q in hub.queue_service.list_queues(name_starts_with=f"{names.lower}-")}
    control = re.compile(re.escape(names.lower) + r"-control-(\d{2})$")
    indices = sorted(int(m.group(1)) for q in queue_names if (m := control.match(q)))
    for container in (names.large_messages_container, names.app_lease_container, names.leases_container):
        s.containers[container] = await hub.blob_service.get_container_client(container).exists()
    if not any(s.tables[t] for t in (names.history_table, names.instances_table, names.partitions_table)) and not (
        queue_names
    ):
        raise TaskHubNotFoundError(
            f"no task hub {names.task_hub!r} in this account (no tables or queues); check --task-hub-name"
        )
    s.task_hub_json_partition_count = await _task_hub_json_count(hub)
    rows = await hub.partitions.count() if s.tables[names.partitions_table] else None
    count = rows or s.task_hub_json_partition_count or (max(indices) + 1 if indices else names.partition_count)
    s.partition_count = count
    s.control_queue_count = max(indices) + 1 if indices else None
    expected = TaskHubNames(names.task_hub, count)
    s.expected_control_queues = expected.control_queues
    s.extra_control_queues = [q for q in sorted(queue_names) if (m := control.match(q)) and int(m.group(1)) >= count]
    for queue in [*s.expected_control_queues, names.work_item_queue, *s.extra_control_queues]:
        s.queues[queue] = await _scan_queue(hub, queue, queue in queue_names)


async def _task_hub_json_count(hub: TaskHubStorage) -> int | None:
    """``taskhub.json`` of the v1/v2 blob lease managers (absent for v3 hubs)."""
    blob = hub.blob_service.get_blob_client(hub.names.leases_container, "taskhub.json")
    try:
        data = json.loads(await (await blob.download_blob()).readall())
    except (ResourceNotFoundError, ValueError):
        return None
    count = data.get("PartitionCount") if isinstance(data, dict) else None
    return count if isinstance(count, int) else None


async def _scan_queue(hub: TaskHubStorage, name: str, exists: bool) -> QueueFact:
    fact = QueueFact(name=name, exists=exists)
    if not exists:
        return fact
    client = hub.queue_service.get_queue_client(name)
    try:
        props = await client.get_queue_properties()
        fact.approximate_count = int(props.approximate_message_count or 0)
        if fact.approximate_count:
            fact.peeked = [await _peeked(hub, name, raw) for raw in await client.peek_messages(max_messages=PEEK_MAX)]
    except ResourceNotFoundError:
        fact.exists = False
    return fact


async def _peeked(hub: TaskHubStorage, queue: str, raw: Any) -> PeekedMessage:
    base = {"queue": queue, "message_id": str(raw.id), "dequeue_count": int(raw.dequeue_count or 0),
            "inserted_on": raw.inserted_on}
    try:
        data = decode_message_data(str(raw.content or ""))
        if data.compressed_blob_name:
            data = decode_message_data(await hub.payloads.download_text(data.compressed_blob_name))
    except MessageDecodeError as exc:
        return PeekedMessage(**base, instance_id=None, execution_id=None, event_type=None, decode_error=str(exc))
    except ResourceNotFoundError:
        return PeekedMessage(**base, instance_id=None, execution_id=None, event_type=None,
                             decode_error="its large-message blob is missing")
    tm = data.task_message
    if tm is None:
        return PeekedMessage(**base, instance_id=None, execution_id=None, event_type=None)
    return PeekedMessage(
        **base, instance_id=tm.orchestration_instance.instance_id,
        execution_id=tm.orchestration_instance.execution_id, event_type=tm.event.event_type.name,
    )


# --------------------------------------------------------------------------- leases
async def _scan_leases(hub: TaskHubStorage, s: HubSnapshot) -> None:
    if s.tables.get(hub.names.partitions_table):
        s.leases = sorted(await hub.partitions.read_all(), key=lambda lease: lease.name)
    if s.containers.get(hub.names.leases_container):
        container = hub.blob_service.get_container_client(hub.names.leases_container)
        async for blob in container.list_blobs():
            kind, _, partition = blob.name.partition("/")
            if not partition:
                continue
            owner = await _lease_blob_owner(container, blob.name)
            leased = str(getattr(blob.lease, "state", "")).lower().endswith("leased")
            s.blob_leases.append(BlobLeaseFact(kind, partition, owner, leased))


async def _lease_blob_owner(container: Any, name: str) -> str | None:
    try:
        data = json.loads(await (await container.download_blob(name)).readall())
    except (ResourceNotFoundError, ValueError, HttpResponseError):
        return None
    owner = data.get("Owner") if isinstance(data, dict) else None
    return owner if isinstance(owner, str) and owner else None


# --------------------------------------------------------------------------- instances and histories
async def _scan_instances(hub: TaskHubStorage, s: HubSnapshot, progress: Progress, query: str | None) -> None:
    table = hub.table_service.get_table_client(hub.names.instances_table)
    async with table:
        rows = (table.list_entities(select=_INSTANCE_SELECT) if query is None
                else table.query_entities(query, select=_INSTANCE_SELECT))
        async for entity in rows:
            fact = instance_fact(entity)
            s.instances[fact.instance_id] = fact
            if len(s.instances) % 500 == 0:
                progress(f"instances: {len(s.instances)} read")


async def _read_lock_holders(hub: TaskHubStorage, s: HubSnapshot) -> None:
    """A partial scan still needs the rows of the orchestrations that hold entity locks."""
    table = hub.table_service.get_table_client(hub.names.instances_table)
    async with table:
        for holder in {i.locked_by for i in s.instances.values() if i.locked_by} - set(s.instances):
            try:
                entity = await table.get_entity(escape_partition_key(holder), "", select=_INSTANCE_SELECT)
            except ResourceNotFoundError:
                continue
            s.instances[holder] = instance_fact(entity)


def instance_fact(entity: Mapping[str, Any]) -> InstanceFact:
    """The doctor's view of one Instances row (entities: the lock holder from CustomStatus)."""
    state = instance_codec.instance_entity_to_state(entity)
    locked_by = None
    if state.instance_id.startswith("@"):
        entity_status = entity_codec.decode_entity_status(state.custom_status)
        locked_by = entity_status.locked_by if entity_status else None
    raw = entity.get("RuntimeStatus")
    metadata = getattr(entity, "metadata", {}) or {}
    return InstanceFact(
        instance_id=state.instance_id,
        status=state.runtime_status,
        raw_status=raw if isinstance(raw, str) else None,
        execution_id=state.execution_id or None,
        created_time=state.created_time,
        last_updated_time=state.last_updated_time,
        scheduled_start_time=state.scheduled_start_time,
        etag=str(metadata.get("etag", "")),
        locked_by=locked_by,
    )


def _dt(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


async def _scan_histories(hub: TaskHubStorage, s: HubSnapshot, progress: Progress, opts: DoctorOptions) -> None:
    table = hub.table_service.get_table_client(hub.names.history_table)
    async with table:
        if opts.full_scan:
            rows = table.query_entities(f"RowKey eq '{SENTINEL_ROW_KEY}'", select=["PartitionKey"])
            s.history_ids = {unescape_partition_key(str(e["PartitionKey"])) async for e in rows}
        quiet = sorted(
            (i for i in s.instances.values()
             if i.status in _LIVE and not i.is_entity and i.untouched_for(s.now, opts.horizon)),
            key=lambda i: i.last_updated_time or s.now,
        )
        cap = len(quiet) if opts.max_history_reads is None else opts.max_history_reads
        live, skipped = quiet[:cap], quiet[cap:]
        s.history_unread = {i.instance_id for i in skipped}
        if skipped:
            s.notes.append(f"{len(skipped)} live instances not checked (history reads capped at {cap})")
        gate = asyncio.Semaphore(HISTORY_READS_IN_PARALLEL)
        done = 0

        async def read(instance_id: str) -> None:
            nonlocal done
            async with gate:
                rows = await _history_rows(table, instance_id)
            if rows:
                s.histories[instance_id] = summarise_history(instance_id, rows)
            done += 1
            if done % 100 == 0:
                progress(f"histories: {done}/{len(live)} read")

        await asyncio.gather(*(read(i.instance_id) for i in live))


async def _history_rows(table: Any, instance_id: str) -> list[Mapping[str, Any]]:
    query = f"PartitionKey eq {odata_string(escape_partition_key(instance_id))}"
    return [e async for e in table.query_entities(query, select=_HISTORY_SELECT)]


def summarise_history(instance_id: str, rows: Iterable[Mapping[str, Any]]) -> HistoryFact:
    """Status implied by the current generation's rows (the sentinel's ExecutionId decides)."""
    ordered = sorted(rows, key=lambda r: str(r.get("RowKey", "")))
    sentinel = next((r for r in ordered if r.get("RowKey") == SENTINEL_ROW_KEY), None)
    execution_id = (sentinel or {}).get("ExecutionId") or next(
        (r.get("ExecutionId") for r in ordered if r.get("ExecutionId")), None
    )
    events = [r for r in ordered if r.get("RowKey") != SENTINEL_ROW_KEY and r.get("ExecutionId") == execution_id]
    status = OrchestrationStatus.Pending
    for row in events:
        kind = str(row.get("EventType", ""))
        if kind == "ExecutionCompleted":
            status = _completed_status(row.get("OrchestrationStatus"))
        elif kind == "ExecutionSuspended" and status is OrchestrationStatus.Running:
            status = OrchestrationStatus.Suspended
        elif kind == "ExecutionResumed" and status is OrchestrationStatus.Suspended:
            status = OrchestrationStatus.Running
        elif kind in _STATUS_BY_EVENT:
            status = _STATUS_BY_EVENT[kind]
    stamps = [t for t in (_dt(r.get("_Timestamp")) for r in events) if t is not None]
    return HistoryFact(
        instance_id=instance_id,
        execution_id=str(execution_id) if execution_id else None,
        status=status,
        event_count=len(events),
        last_event_time=max(stamps) if stamps else None,
    )


def _completed_status(raw: object) -> OrchestrationStatus:
    if isinstance(raw, str) and raw in OrchestrationStatus.__members__:
        return OrchestrationStatus[raw]
    if isinstance(raw, int) and raw in OrchestrationStatus._value2member_map_:
        return OrchestrationStatus(raw)
    return OrchestrationStatus.Completed
