"""The pure half of ``doctor``: a :class:`HubSnapshot` in, findings out (no I/O).

Each rule names the repair that fixes its finding, when one is safe (see :mod:`.doctor_repair`),
and otherwise says what a person should do. The rules follow DTAS semantics
(runtime-algorithms.md): a checkpoint writes history before the Instances row, so a worker
killed in between leaves a row behind its history; a client writes the start message before
the row, so a Pending row whose message is gone never starts; a v3 lease row is free once
``ExpiresAt`` has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ..codec.partitioning import escape_partition_key
from ..model import OrchestrationStatus
from .findings import Finding, Severity
from .hub_snapshot import DoctorOptions, HubSnapshot, InstanceFact

__all__ = ["RULES", "analyse"]

_LIVE = frozenset({OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended})
_FUTURE_LEASE_SLACK = timedelta(minutes=10)
_POISON_PREFIX = "poison/"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _name(status: OrchestrationStatus | None, raw: str | None = None) -> str:
    return status.name if status is not None else (raw or "unknown")


# --------------------------------------------------------------------------- resources
def resources_missing(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    f = Finding(
        "resources.missing", Severity.ERROR, "Task hub resources are missing",
        "Workers fail or lose messages without them; --repair creates them (idempotent, as a worker's start does).",
        repair="create-missing-resources",
    )
    for table, exists in s.tables.items():
        if not exists and not table.endswith("Poison"):
            f.add({"id": table, "kind": "table"})
    for name in s.expected_control_queues + [q for q in s.queues if q.endswith("-workitems")]:
        fact = s.queues.get(name)
        if fact is not None and not fact.exists:
            f.add({"id": name, "kind": "queue"})
    for container, exists in s.containers.items():
        if not exists and container.endswith("-applease"):
            f.add({"id": container, "kind": "container"})
    return [f]


# --------------------------------------------------------------------------- partitions
def partition_count_mismatch(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    f = Finding(
        "partitions.count-mismatch", Severity.ERROR, "Partition counts disagree",
        "Every worker and client must use one partition count (instances are routed by hash % count). "
        "Set partitionCount to the Partitions table's row count everywhere; never change it on a live hub.",
    )
    rows = len(s.leases)
    counts = {"partitionsTableRows": rows or None, "taskHubJson": s.task_hub_json_partition_count,
              "controlQueues": s.control_queue_count}
    if len({c for c in counts.values() if c is not None}) > 1:
        f.add({"id": s.task_hub, **counts})
    stranded = Finding(
        "partitions.stranded-queue", Severity.ERROR, "Control queues outside the partition count hold messages",
        "No worker reads these queues. Re-create the hub with the old partition count, or move the messages "
        "by hand to the queue their instance id hashes to.",
    )
    for name in s.extra_control_queues:
        fact = s.queues.get(name)
        count = fact.approximate_count if fact else 0
        if count:
            stranded.add({"id": name, "messages": count})
    return [f, stranded]


def lease_problems(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    orphaned = Finding(
        "partitions.no-live-owner", Severity.WARNING, "Partitions with no live owner",
        "Their owner stopped renewing (crashed or hung); messages wait until another worker claims them. "
        "--repair releases the expired leases (eTag-conditional) so any running worker claims them at once.",
        repair="release-expired-lease",
    )
    contested = Finding(
        "partitions.contested", Severity.WARNING, "Partitions claimed by two workers",
        "A hand-over that does not finish: check that both workers are alive and their clocks agree; "
        "the current owner must drain and release.",
    )
    future = Finding(
        "partitions.lease-in-future", Severity.WARNING, "Leases that expire implausibly late",
        "A worker with a fast clock wrote them; no other worker can take the partition until then. "
        "Fix the clock; if the owner is gone, delete its lease row's owner by hand.",
    )
    unclaimed = Finding(
        "partitions.unclaimed", Severity.INFO, "Partitions no worker holds",
        "Released cleanly: no worker is running (or one is starting). Start a worker to process them.",
    )
    for lease in s.leases:
        live = lease.current_owner is not None and lease.expires_at is not None and lease.expires_at > s.now
        item = {"id": lease.name, "currentOwner": lease.current_owner, "nextOwner": lease.next_owner,
                "expiresAt": _iso(lease.expires_at), "lastRenewal": _iso(lease.last_renewal)}
        if not live:
            stale = lease.current_owner is not None or lease.next_owner is not None or lease.is_draining
            (orphaned if stale else unclaimed).add({**item, "repairable": stale})
        elif lease.expires_at is not None and lease.expires_at > s.now + _FUTURE_LEASE_SLACK:
            future.add(item)
        if live and lease.next_owner is not None and lease.next_owner != lease.current_owner:
            contested.add(item)
    by_partition: dict[str, dict[str, str | None]] = {}
    for bl in s.blob_leases:
        if bl.leased:
            by_partition.setdefault(bl.partition, {})[bl.kind] = bl.owner
    for partition, owners in sorted(by_partition.items()):
        intent, ownership = owners.get("intent"), owners.get("ownership")
        if intent and ownership and intent != ownership:
            contested.add({"id": partition, "intentOwner": intent, "ownershipOwner": ownership})
    leased = {bl.partition for bl in s.blob_leases if bl.leased}
    for bl in s.blob_leases:
        if bl.partition not in leased and bl.kind in ("default", "ownership"):
            orphaned.add({"id": bl.partition, "leaseBlob": f"{bl.kind}/{bl.partition}", "repairable": False})
    return [orphaned, unclaimed, contested, future]


# --------------------------------------------------------------------------- messages
def message_problems(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    past = Finding(
        "messages.past-poison-threshold", Severity.WARNING, "Messages dequeued past the poison threshold",
        "Each retry failed. Our workers quarantine them (see `durable-azstorage poison list`); .NET workers "
        "retry them every 10 minutes forever. Look at the instance's history and logs.",
    )
    near = Finding(
        "messages.near-poison-threshold", Severity.INFO, "Messages retried many times",
        "They are failing repeatedly and will be quarantined at the threshold.",
    )
    bad = Finding(
        "messages.undecodable", Severity.ERROR, "Messages that cannot be decoded",
        "A running worker of ours quarantines them on receipt; otherwise inspect them in the queue and delete them.",
    )
    for queue in s.queues.values():
        for m in queue.peeked:
            item = {"id": m.instance_id or m.message_id, "queue": m.queue, "messageId": m.message_id,
                    "dequeueCount": m.dequeue_count, "eventType": m.event_type}
            if m.decode_error:
                bad.add({**item, "id": m.message_id, "error": m.decode_error})
            elif m.dequeue_count >= o.poison_threshold:
                past.add(item)
            elif m.dequeue_count >= max(2, o.poison_threshold // 2):
                near.add(item)
    return [bad, past, near]


def quarantined(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    f = Finding(
        "poison.quarantined", Severity.WARNING, "Quarantined (poison) messages",
        "Inspect with `durable-azstorage poison list`, then `poison requeue` (after a fix) or `poison drop`.",
    )
    for p in s.poison:
        f.add({"id": p.instance_id or p.message_id, "queue": p.queue, "messageId": p.message_id,
               "eventType": p.event_type, "reason": p.reason[:200], "quarantinedAt": _iso(p.quarantined_at)})
    return [f]


# --------------------------------------------------------------------------- instances vs history
def _status_findings() -> dict[str, Finding]:
    return {
        "stale": Finding(
            "status.terminal-history-live-row", Severity.ERROR,
            "Instances rows still live although their history has finished",
            "A worker stopped between writing history and the row. Clients wait forever. "
            "--repair writes the row from the history (eTag-conditional).",
            repair="sync-status-from-history",
        ),
        "behind": Finding(
            "status.row-behind-history", Severity.WARNING, "Instances rows whose status lags their history",
            "--repair writes the status the history implies (eTag-conditional).",
            repair="sync-status-from-history",
        ),
        "pending": Finding(
            "status.pending-start-missing", Severity.ERROR,
            "Pending instances with no start message and no history",
            "The start message was lost or discarded (e.g. a recreate that raced). --repair sends the start "
            "message again from the row (same execution id, so workers accept it once).",
            repair="resend-start-message",
        ),
        "nohistory": Finding(
            "status.live-row-without-history", Severity.ERROR, "Running instances with no history",
            "The history was deleted or never written. Terminate or purge the instance (`durable-azstorage "
            "terminate` / `purge`), then start it again if needed.",
        ),
        "terminal": Finding(
            "status.terminal-row-live-history", Severity.WARNING,
            "Finished Instances rows whose history is still running",
            "Workers discard new messages for it. Decide by hand: rewind/restart it, or purge it.",
        ),
        "execution": Finding(
            "status.execution-mismatch", Severity.WARNING, "Instances rows and history of different executions",
            "The row and the history describe different executions (a recreate or ContinueAsNew was cut short). "
            "Inspect `durable-azstorage history`, then terminate or purge.",
        ),
        "orphan": Finding(
            "status.history-without-row", Severity.WARNING, "History with no Instances row",
            "Queries and clients do not see these instances. --repair re-creates the row from the history "
            "(insert-only, so an existing row is never overwritten).",
            repair="recreate-instance-row",
        ),
        "idle": Finding(
            "status.idle-running", Severity.INFO, "Running instances with no progress for a long time",
            "Often waits for an event that will never come; terminate them if they are forgotten.",
        ),
    }


def instance_status(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    out = _status_findings()
    for row in s.instances.values():
        if row.is_entity:
            continue
        key = _classify(s, o, row)
        if key is not None:
            history = s.histories.get(row.instance_id)
            out[key].add({
                "id": row.instance_id, "rowStatus": _name(row.status, row.raw_status),
                "historyStatus": history.status.name if history else None,
                "rowExecutionId": row.execution_id, "historyExecutionId": history.execution_id if history else None,
                "lastUpdated": _iso(row.last_updated_time), "etag": row.etag,
            })
    for instance_id in sorted(s.history_ids - set(s.instances)):
        if not instance_id.startswith("@"):
            out["orphan"].add({"id": instance_id})
    return list(out.values())


def _classify(s: HubSnapshot, o: DoctorOptions, row: InstanceFact) -> str | None:
    """Only rows untouched for ``horizon``: a live worker may be between a history and a row write."""
    if not row.untouched_for(s.now, o.horizon) or row.instance_id in s.history_unread:
        return None
    history = s.histories.get(row.instance_id)
    if row.status not in _LIVE:
        same = history is not None and history.execution_id == row.execution_id
        if same and history is not None and history.status in _LIVE and history.event_count:
            return "terminal"
        return None
    if history is None or history.event_count == 0 or history.execution_id != row.execution_id:
        if row.status is OrchestrationStatus.Pending:
            return None if _start_peeked(s, row) else "pending"
        return "nohistory" if history is None or history.event_count == 0 else "execution"
    if history.status.is_terminal or history.status is OrchestrationStatus.ContinuedAsNew:
        return "stale"
    if history.status != row.status:
        return "behind"
    if row.status is OrchestrationStatus.Running and _idle(row, s.now, o.idle_running):
        return "idle"
    return None


def _idle(row: InstanceFact, now: datetime, limit: timedelta) -> bool:
    return row.last_updated_time is not None and row.last_updated_time + limit < now


def _start_peeked(s: HubSnapshot, row: InstanceFact) -> bool:
    return any(
        m.event_type == "ExecutionStarted" and m.execution_id in (None, row.execution_id)
        for m in s.peeked_for(row.instance_id)
    )


# --------------------------------------------------------------------------- entities
def entity_locks(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    f = Finding(
        "entities.lock-held-by-finished", Severity.ERROR, "Entities locked by orchestrations that finished",
        "Every operation on these entities waits forever. --repair sends the entity the release message "
        "the lock holder never sent (the entity ignores it if the lock has moved on).",
        repair="release-entity-lock",
    )
    for row in s.instances.values():
        holder_id = row.locked_by
        if not row.is_entity or not holder_id:
            continue
        holder = s.instances.get(holder_id)
        if holder is None or (holder.status is not None and holder.status.is_terminal):
            f.add({"id": row.instance_id, "lockedBy": holder_id,
                   "holderStatus": _name(holder.status, holder.raw_status) if holder else "not found"})
    return [f]


# --------------------------------------------------------------------------- blobs
def orphaned_blobs(s: HubSnapshot, o: DoctorOptions) -> list[Finding]:
    f = Finding(
        "blobs.orphaned", Severity.WARNING, "Large-message blobs that no instance refers to",
        f"They cost storage only. --repair deletes those older than {o.orphan_blob_age.days} days "
        "(eTag-conditional); younger ones may belong to a start still in flight.",
        repair="delete-orphaned-blob",
    )
    known = set(s.instances) | s.history_ids
    escaped = {escape_partition_key(i) for i in known}
    poisoned = {f"{_POISON_PREFIX}{p.queue}/{p.message_id}.json.gz" for p in s.poison}
    for blob in s.blobs:
        if blob.name.startswith(_POISON_PREFIX):
            if blob.name in poisoned:
                continue
        elif _owner_known(blob.name, known, escaped):
            continue
        old = blob.last_modified is not None and blob.last_modified + o.orphan_blob_age < s.now
        f.add({"id": blob.name, "lastModified": _iso(blob.last_modified), "etag": blob.etag, "repairable": old})
    return [f]


def _owner_known(name: str, known: set[str], escaped: set[str]) -> bool:
    """Blob names start with the raw (queue blobs) or escaped (history blobs) instance id and '/'."""
    index = name.find("/")
    while index > 0:
        prefix = name[:index]
        if prefix in known or prefix in escaped:
            return True
        index = name.find("/", index + 1)
    return False


Rule = Callable[[HubSnapshot, DoctorOptions], list[Finding]]
RULES: tuple[Rule, ...] = (
    resources_missing,
    partition_count_mismatch,
    lease_problems,
    instance_status,
    entity_locks,
    message_problems,
    quarantined,
    orphaned_blobs,
)


def analyse(snapshot: HubSnapshot, options: DoctorOptions | None = None) -> list[Finding]:
    """Every finding of every rule (empty ones included; reports drop them)."""
    opts = options or DoctorOptions()
    return [finding for rule in RULES for finding in rule(snapshot, opts)]
