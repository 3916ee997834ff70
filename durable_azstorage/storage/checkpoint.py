"""One checkpoint of an orchestration or entity episode, committed in the DTAS order.

Contract of :func:`commit_checkpoint`, which mirrors DTAS
``AzureStorageOrchestrationService.CompleteTaskOrchestrationWorkItemAsync``:

1. **Send every outbound message** (activities to the work-item queue; timers, sub-orchestrations,
   events and entity messages to control queues), in parallel. Each message's visibility delay is
   taken from the message itself (:func:`~durable_azstorage.storage.queues.visibility_delay_for`:
   a timer's fire time, a scheduled start, a delayed entity signal), so no caller computes it.
2. **Append the new history events** in entity-group batches of at most 99 rows plus the sentinel
   row, guarded by the sentinel's eTag (``If-Match``; ``Insert`` when the instance is new). Oversized
   columns go to blobs first.
3. **Merge the Instances row** built from the new events (status, output, custom status, times) —
   unless the merge would change nothing but ``LastUpdatedTime`` and the caller wrote the row for
   this execution less than :data:`INSTANCE_ROW_REFRESH` ago (``instance_row_written_at``): an
   intermediate episode of a running orchestration (an activity result in, the next activity out)
   with an unchanged custom status. Readers then see ``LastUpdatedTime`` up to that long behind
   the last episode; status, output, custom status, input and times of creation and completion
   are always written. See docs/performance.md ("Fewer Instances writes") for why that is safe
   for the status API, monitoring tools and a .NET worker sharing the hub.

It returns the sentinel's new eTag and the names of the blobs it offloaded. The caller deletes (or
abandons) the inbound messages only after it returns: that is step 4, and the reason a crash at any
point is safe — the inbound messages come back and the episode is replayed; rows are rewritten at
the same RowKeys; outbound messages may be sent twice (activities are at-least-once).

Raises :class:`~durable_azstorage.errors.CheckpointConflictError` when the sentinel changed or
appeared underneath (another worker owns the instance). The caller must then write nothing more,
drop its cached history for the instance and abandon the inbound messages so the owner (or its
next episode, with the history reloaded) processes them. Storage errors (``azure.core``
exceptions) propagate unchanged: nothing after the failed step was written, and the caller handles
them like a crash of the episode.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..codec import instance_codec
from ..codec.queue_codec import MessageData
from ..model import HistoryEvent, OrchestrationInstance, TaskMessage, TaskScheduledEvent
from .history_store import OffloadedProperty
from .queues import next_sequence_number
from .task_hub_storage import TaskHubStorage

__all__ = ["INSTANCE_ROW_REFRESH", "Checkpoint", "CheckpointResult", "commit_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """What one episode changes: the only input of :func:`commit_checkpoint`."""

    instance_id: str
    execution_id: str
    new_events: Sequence[HistoryEvent]
    """The tail appended by this episode (a new generation passes its whole history)."""
    event_count: int
    """Events of the execution once the checkpoint is written (the new ones included)."""
    etag: str | None
    """The sentinel's eTag as last read; None for an instance with no history yet."""
    now: datetime
    outbound: Sequence[TaskMessage] = ()
    episode: int | None = None
    custom_status: str | None = None
    keep_custom_status: bool = False
    """True when no user code ran: leave the column as the last episode set it."""
    instance_row_written_at: datetime | None = None
    """When the caller last wrote the Instances row of this execution; None: unknown (always merge)."""
    instance_row_custom_status: str | None = None
    """The ``CustomStatus`` column value the caller last wrote (compared before skipping a merge)."""
    applied_message_ids: Sequence[str] | None = None
    """The sentinel's record of applied inbound messages after this episode (None: unchanged)."""
    on_history_committed: Callable[[], None] | None = None
    """Called the moment the history write (the commit point) succeeds, before the Instances row:
    for what must follow the commit as closely as possible (exporting the spans it finished)."""


@dataclass
class CheckpointResult:
    etag: str | None
    offloaded_blob_names: list[str] = field(default_factory=list)
    instance_row_written: bool = False
    """Whether step 3 merged the Instances row (False when there were no new events or it was skipped)."""
    instance_row_custom_status: str | None = None
    """The ``CustomStatus`` value the row holds after this checkpoint, as far as this writer knows."""


INSTANCE_ROW_REFRESH = timedelta(seconds=30)
"""Longest a running instance's ``LastUpdatedTime`` may lag behind its last episode."""
_TOUCH_ONLY_COLUMNS = frozenset(
    {"PartitionKey", "RowKey", "ExecutionId", "LastUpdatedTime", "TaskHubName", "CustomStatus"}
)


def _merge_changes_nothing_visible(row: dict[str, object], checkpoint: Checkpoint) -> bool:
    """True when the merge would only move ``LastUpdatedTime`` of a row written recently."""
    written_at = checkpoint.instance_row_written_at
    if written_at is None or checkpoint.now - written_at >= INSTANCE_ROW_REFRESH:
        return False
    if not _TOUCH_ONLY_COLUMNS.issuperset(row):
        return False
    return "CustomStatus" not in row or row["CustomStatus"] == checkpoint.instance_row_custom_status


async def commit_checkpoint(hub: TaskHubStorage, checkpoint: Checkpoint) -> CheckpointResult:
    """Steps 1 to 3 of the contract above; the caller settles the inbound messages afterwards."""
    await _send_outbound(hub, checkpoint)
    if not checkpoint.new_events:
        _committed(checkpoint)
        return CheckpointResult(etag=checkpoint.etag, instance_row_custom_status=checkpoint.instance_row_custom_status)
    offloaded: list[OffloadedProperty] = []
    etag = await hub.history.checkpoint(
        checkpoint.instance_id,
        checkpoint.execution_id,
        all_event_count=checkpoint.event_count,
        new_events=checkpoint.new_events,
        etag=checkpoint.etag,
        now=checkpoint.now,
        offloaded=offloaded,
        applied_message_ids=checkpoint.applied_message_ids,
    )
    _committed(checkpoint)
    row = instance_codec.instance_update_for_checkpoint(
        list(checkpoint.new_events),
        instance_id=checkpoint.instance_id,
        execution_id=checkpoint.execution_id,
        custom_status=checkpoint.custom_status,
        task_hub_name=hub.names.task_hub,
        now=checkpoint.now,
    )
    if checkpoint.keep_custom_status:
        row.pop("CustomStatus", None)
    blob_names = [o.blob_name for o in offloaded]
    custom_status = row.get("CustomStatus", checkpoint.instance_row_custom_status)
    if _merge_changes_nothing_visible(row, checkpoint):
        log.debug("checkpoint.instance_merge_skipped", extra={"instance_id": checkpoint.instance_id})
        return CheckpointResult(etag, blob_names, instance_row_written=False, instance_row_custom_status=custom_status)
    # Large Input/Output point at the blob the history row just got (as DTAS does).
    await hub.instances.merge_checkpoint(row, offloaded=offloaded)
    return CheckpointResult(etag, blob_names, instance_row_written=True, instance_row_custom_status=custom_status)


def _committed(checkpoint: Checkpoint) -> None:
    if checkpoint.on_history_committed is not None:
        checkpoint.on_history_committed()


async def _send_outbound(hub: TaskHubStorage, checkpoint: Checkpoint) -> None:
    sender = OrchestrationInstance(instance_id=checkpoint.instance_id, execution_id=checkpoint.execution_id)
    sends = [_send(hub, sender, message, checkpoint.episode) for message in checkpoint.outbound]
    if len(sends) == 1:
        await sends[0]  # the common case (one activity, one timer): no task around it
    elif sends:
        await asyncio.gather(*sends)


async def _send(
    hub: TaskHubStorage, sender: OrchestrationInstance, message: TaskMessage, episode: int | None
) -> None:
    data = MessageData(
        activity_id=uuid.uuid4(),
        task_message=message,
        sequence_number=next_sequence_number(),
        episode=episode,
        sender=sender,
    )
    await hub.queue(queue_name_for(hub, message)).send(data)


def queue_name_for(hub: TaskHubStorage, message: TaskMessage) -> str:
    """Activities go to the work-item queue; everything else to the target's control queue."""
    if isinstance(message.event, TaskScheduledEvent):
        return hub.names.work_item_queue
    return hub.names.control_queue_for(message.orchestration_instance.instance_id)
