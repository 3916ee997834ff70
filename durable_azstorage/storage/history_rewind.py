"""DTAS's legacy rewind: neutralise failure rows in place so a replay retries them.

``AzureTableTrackingStore.RewindHistoryAsync`` rewrites rows of
the latest execution instead of appending events: each failure row (``TaskFailed``,
``SubOrchestrationInstanceFailed``, the ``Failed`` ``ExecutionCompleted``) becomes a
``GenericEvent`` whose ``Reason`` is ``"Rewound: <old EventType>"``, the ``TaskScheduled`` row
of a failed activity is neutralised the same way, and failed sub-orchestrations are rewound
recursively. Keeping the RowKeys lets a .NET worker replay the same partition afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from ..codec.odata import odata_string
from ..codec.partitioning import SENTINEL_ROW_KEY, escape_partition_key
from ..errors import InstanceNotFoundError

__all__ = ["MarkPending", "rewind_history"]

log = logging.getLogger(__name__)

MarkPending = Callable[[str], Awaitable[None]]
"""Sets an instance's Instances row to Pending (``InstanceStore.set_pending_for_rewind``)."""

_GENERIC = "GenericEvent"


async def rewind_history(table: TableClient, instance_id: str, mark_pending: MarkPending | None = None) -> list[str]:
    """Rewrite failure rows of ``instance_id`` (and failed children); return the failed leaves.

    The caller sends each leaf a ``GenericEvent`` message to trigger the replay. Rows are
    replaced with their own ETag, so a concurrent checkpoint makes this fail loudly (412)
    instead of silently mixing histories.
    """
    partition = f"PartitionKey eq {odata_string(escape_partition_key(instance_id))}"
    started = [e async for e in table.query_entities(f"{partition} and EventType eq 'OrchestratorStarted'")]
    if not started:
        raise InstanceNotFoundError(f"instance {instance_id!r} has no history to rewind")
    latest = max(started, key=lambda e: str(e["RowKey"]))
    execution_id = str(latest.get("ExecutionId", ""))
    scope = f"{partition} and ExecutionId eq {odata_string(execution_id)}"
    failures = [
        e
        async for e in table.query_entities(
            f"{scope} and (OrchestrationStatus eq 'Failed' or EventType eq 'TaskFailed'"
            " or EventType eq 'SubOrchestrationInstanceFailed')"
        )
    ]
    leaves: list[str] = []
    has_failed_children = False
    for entity in sorted(failures, key=lambda e: str(e["RowKey"])):
        if entity.get("RowKey") == SENTINEL_ROW_KEY:
            continue
        event_type = str(entity.get("EventType", ""))
        scheduled_id = entity.get("TaskScheduledId")
        trigger_filter = f"{scope} and EventId eq {int(scheduled_id) if isinstance(scheduled_id, int) else 0}"
        if event_type == "TaskFailed":
            await _rewrite_first(table, f"{trigger_filter} and EventType eq 'TaskScheduled'", to_generic=True)
        elif event_type == "SubOrchestrationInstanceFailed":
            has_failed_children = True
            created = await _rewrite_first(
                table, f"{trigger_filter} and EventType eq 'SubOrchestrationInstanceCreated'", to_generic=False
            )
            child = created.get("InstanceId") if created is not None else None
            if isinstance(child, str) and child:
                leaves += await rewind_history(table, child, mark_pending)
        await _replace(table, entity, to_generic=True)
    if mark_pending is not None:
        await mark_pending(instance_id)
    if not has_failed_children:
        leaves.append(instance_id)
    log.info(
        "history.rewound",
        extra={"instance_id": instance_id, "execution_id": execution_id, "rows": len(failures), "leaves": leaves},
    )
    return leaves


async def _rewrite_first(table: TableClient, query: str, *, to_generic: bool) -> TableEntity | None:
    rows = [e async for e in table.query_entities(query)]
    if not rows:
        log.warning("history.rewind_trigger_row_missing", extra={"filter": query})
        return None
    await _replace(table, rows[0], to_generic=to_generic)
    return rows[0]


async def _replace(table: TableClient, entity: TableEntity, *, to_generic: bool) -> None:
    row: dict[str, Any] = dict(entity)
    row["Reason"] = "Rewound: " + str(entity.get("EventType", ""))
    if to_generic:
        row["EventType"] = _GENERIC
    await table.update_entity(
        row, mode=UpdateMode.REPLACE, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
    )
