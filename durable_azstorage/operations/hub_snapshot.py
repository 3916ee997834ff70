"""What ``doctor`` read from a hub, as plain values: the input of the pure rules.

:mod:`.doctor_scan` fills it from storage; :mod:`.doctor_rules` turns it into findings; tests
can build one by hand. Nothing here talks to Azure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..model import OrchestrationStatus
from ..storage.partition_table import Lease

__all__ = [
    "BlobFact",
    "BlobLeaseFact",
    "DoctorOptions",
    "HistoryFact",
    "HubSnapshot",
    "InstanceFact",
    "PeekedMessage",
    "PoisonFact",
    "QueueFact",
]


@dataclass(frozen=True)
class DoctorOptions:
    """Thresholds of the rules; the defaults suit DTAS defaults (5-minute visibility, 10-minute back-off)."""

    horizon: timedelta = timedelta(minutes=15)
    """How long a Pending instance may go without history (or a lease without renewal) before it counts."""
    poison_threshold: int = 20
    """Our worker quarantines at this dequeue count (WorkerSettings.poison_dequeue_threshold)."""
    orphan_blob_age: timedelta = timedelta(days=7)
    """A large-message blob of an instance with no row and no history is garbage after this long."""
    idle_running: timedelta = timedelta(days=30)
    """Running instances untouched for this long are listed (info): often forgotten waits."""
    max_history_reads: int | None = None
    """Read at most this many histories (oldest quiet instances first); None: all of them."""
    full_scan: bool = True
    """False: read only live Instances rows and entities (no History sentinel scan, no blob listing),
    for a periodic check of a big hub; history-without-row and orphaned blobs are then not looked for."""


@dataclass(frozen=True)
class InstanceFact:
    """The columns of one Instances row that the rules need (plus its eTag for repairs)."""

    instance_id: str
    status: OrchestrationStatus | None
    raw_status: str | None
    execution_id: str | None
    created_time: datetime | None
    last_updated_time: datetime | None
    scheduled_start_time: datetime | None
    etag: str
    locked_by: str | None = None

    @property
    def is_entity(self) -> bool:
        return self.instance_id.startswith("@")

    def untouched_for(self, now: datetime, horizon: timedelta) -> bool:
        """Created, updated and (if scheduled) due more than ``horizon`` ago."""
        stamps = [t for t in (self.created_time, self.last_updated_time, self.scheduled_start_time) if t is not None]
        return not stamps or max(stamps) + horizon < now


@dataclass(frozen=True)
class HistoryFact:
    """One instance's current-generation history, summarised."""

    instance_id: str
    execution_id: str | None
    status: OrchestrationStatus
    event_count: int
    last_event_time: datetime | None


@dataclass(frozen=True)
class PeekedMessage:
    """A visible message at the head of a queue (peeking never changes it)."""

    queue: str
    message_id: str
    dequeue_count: int
    inserted_on: datetime | None
    instance_id: str | None
    execution_id: str | None
    event_type: str | None
    decode_error: str | None = None


@dataclass
class QueueFact:
    name: str
    exists: bool
    approximate_count: int = 0
    peeked: list[PeekedMessage] = field(default_factory=list)


@dataclass(frozen=True)
class PoisonFact:
    queue: str
    message_id: str
    instance_id: str | None
    event_type: str | None
    reason: str
    dequeue_count: int
    quarantined_at: datetime | None


@dataclass(frozen=True)
class BlobFact:
    name: str
    last_modified: datetime | None
    etag: str


@dataclass(frozen=True)
class BlobLeaseFact:
    """A v1/v2 (blob) partition lease, as .NET hubs with the blob partition managers keep them."""

    kind: str  # default, intent, ownership
    partition: str
    owner: str | None
    leased: bool


@dataclass
class HubSnapshot:
    """Everything one scan read. ``None`` history means the instance has no history rows."""

    task_hub: str
    now: datetime
    partition_count: int | None
    tables: dict[str, bool] = field(default_factory=dict)
    containers: dict[str, bool] = field(default_factory=dict)
    queues: dict[str, QueueFact] = field(default_factory=dict)
    expected_control_queues: list[str] = field(default_factory=list)
    extra_control_queues: list[str] = field(default_factory=list)
    task_hub_json_partition_count: int | None = None
    control_queue_count: int | None = None
    """Highest ``{hub}-control-NN`` that exists, plus one (None: no control queue exists)."""
    leases: list[Lease] = field(default_factory=list)
    blob_leases: list[BlobLeaseFact] = field(default_factory=list)
    instances: dict[str, InstanceFact] = field(default_factory=dict)
    histories: dict[str, HistoryFact] = field(default_factory=dict)
    history_ids: set[str] = field(default_factory=set)
    history_unread: set[str] = field(default_factory=set)
    """Live instances whose history was not read (over ``max_history_reads``): no verdict on them."""
    notes: list[str] = field(default_factory=list)
    poison: list[PoisonFact] = field(default_factory=list)
    blobs: list[BlobFact] = field(default_factory=list)

    def peeked_for(self, instance_id: str) -> list[PeekedMessage]:
        return [m for q in self.queues.values() for m in q.peeked if m.instance_id == instance_id]
