"""CLI verbs for durable entities: signal-entity, get-entity, list-entities, clean-entity-storage.

Same conventions as the other management verbs (:mod:`._common`): ``--connection``,
``--task-hub-name``, ``--json``, one-line errors with exit code 2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..aio import TaskHubClient
from ..client import EntityMetadata
from ..codec.netjson import format_datetime
from ._common import UTC_DATETIME, Verbs, as_utc, emit, payload_arg, run_async, with_client

__all__ = ["verbs"]

verbs = Verbs()


def _item(m: EntityMetadata) -> dict[str, Any]:
    return {
        "entityId": {"name": m.entity_id.name, "key": m.entity_id.key},
        "lastOperationTime": format_datetime(m.last_operation_time) if m.last_operation_time else None,
        "backlogQueueSize": m.backlog_queue_size,
        "lockedBy": m.locked_by,
        "state": m.state_value(),
    }


@verbs.command("signal-entity")
@click.option("--entity-name", required=True, help="Entity name (lower-cased, as entity ids are).")
@click.option("--entity-key", required=True)
@click.option("--operation", "--op", "operation", required=True, help="Operation name, e.g. add.")
@click.option("--input", "input_text", help="JSON, or @file.json.")
@click.option("--raw-input", is_flag=True, help="Send --input as a string, not JSON.")
@click.option("--signal-time", type=UTC_DATETIME, help="Deliver at this UTC time (at most 6 days ahead).")
def signal_entity(
    connection: str | None,
    setting: str | None,
    task_hub_name: str,
    as_json: bool,
    entity_name: str,
    entity_key: str,
    operation: str,
    input_text: str | None,
    raw_input: bool,
    signal_time: datetime | None,
) -> None:
    """Send a one-way operation to an entity (it is created on first use)."""
    payload = payload_arg(input_text, raw=raw_input)

    async def send(c: TaskHubClient) -> str:
        return await c.signal_entity(
            entity_name,
            operation,
            key=entity_key,
            raw_input=payload,
            signal_time=as_utc(signal_time),
        )

    request_id = run_async(with_client(connection, setting, task_hub_name, send))
    target = f"@{entity_name.lower()}@{entity_key}"
    emit(as_json, {"entity": target, "operation": operation, "requestId": request_id},
          f"Signalled '{operation}' to entity '{target}'.")  # fmt: skip

@verbs.command("get-entity")
@click.option("--entity-name", required=True)
@click.option("--entity-key", required=True)
def get_entity(
    connection: str | None,
    setting: str | None,
    task_hub_name: str,
    as_json: bool,
    entity_name: str,
    entity_key: str,
) -> None:
    """Print an entity's state (exit code 1 when it has none)."""
    metadata = run_async(
        with_client(connection, setting, task_hub_name, lambda c: c.get_entity(entity_name, key=entity_key))
    )
    if metadata is None:
        emit(as_json, None, f"Entity '@{entity_name.lower()}@{entity_key}' does not exist.")
        raise SystemExit(1)
    emit(as_json, _item(metadata), metadata.state or "null")

@verbs.command("list-entities")
@click.option("--entity-name", help="Only entities of this name.")
@click.option("--last-operation-after", type=UTC_DATETIME, help="ISO 8601, UTC.")
@click.option("--last-operation-before", type=UTC_DATETIME, help="ISO 8601, UTC.")
@click.option("--fetch-state/--no-fetch-state", default=True, show_default=True)
@click.option("--include-deleted", is_flag=True, help="Also entities without state (transient).")
@click.option("--top", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--continuation-token")
def list_entities(
    connection: str | None,
    setting: str | None,
    task_hub_name: str,
    as_json: bool,
    entity_name: str | None,
    last_operation_after: datetime | None,
    last_operation_before: datetime | None,
    fetch_state: bool,
    include_deleted: bool,
    top: int,
    continuation_token: str | None,
) -> None:
    """List entities, one page."""

    async def query(c: TaskHubClient) -> Any:
        return await c.list_entities(
            name=entity_name, last_operation_from=as_utc(last_operation_after),
            last_operation_to=as_utc(last_operation_before), include_state=fetch_state,
            include_transient=include_deleted, page_size=top, continuation_token=continuation_token,
        )  # fmt: skip

    page = run_async(with_client(connection, setting, task_hub_name, query))

    def human() -> None:
        for m in page.entities:
            when = format_datetime(m.last_operation_time) if m.last_operation_time else ""
            click.echo(f"{m.entity_id}  {when}  {m.state if m.state is not None else ''}".rstrip())
        click.echo(f"Continuation token for next set of results: '{page.continuation_token or ''}'")

    emit(as_json, {"entities": [_item(m) for m in page.entities], "continuationToken": page.continuation_token},
          human)  # fmt: skip

@verbs.command("clean-entity-storage")
@click.option("--remove-empty-entities/--keep-empty-entities", default=True, show_default=True)
@click.option("--release-orphaned-locks/--keep-orphaned-locks", default=True, show_default=True)
def clean_entity_storage(
    connection: str | None,
    setting: str | None,
    task_hub_name: str,
    as_json: bool,
    remove_empty_entities: bool,
    release_orphaned_locks: bool,
) -> None:
    """Remove empty entities and release locks held by instances that no longer run."""

    async def clean(c: TaskHubClient) -> tuple[int, int]:
        removed = released = 0
        token: str | None = None
        while True:
            result = await c.clean_entity_storage(
                remove_empty_entities=remove_empty_entities, release_orphaned_locks=release_orphaned_locks,
                continuation_token=token,
            )  # fmt: skip
            removed += result.empty_entities_removed
            released += result.orphaned_locks_released
            token = result.continuation_token
            if token is None:
                return removed, released

    removed, released = run_async(with_client(connection, setting, task_hub_name, clean))
    emit(as_json, {"emptyEntitiesRemoved": removed, "orphanedLocksReleased": released},
          f"Removed {removed} empty entities, released {released} orphaned locks.")  # fmt: skip
