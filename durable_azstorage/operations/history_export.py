"""``export-history``: one instance's history as a self-contained JSON file, and reading it back.

Events are written in the DTAS queue form (``$type`` first, .NET member names, integer
``EventType``; the same codec the queues use), so a file reads back into exactly the events the
worker replays, and ``$type`` goes through the codec's whitelist: a file from an incident is data,
never code. :mod:`durable_azstorage.testing` replays such a file in a unit test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ..codec.queue_codec import history_event_from_tree, history_event_to_tree
from ..connection import StorageAccount
from ..errors import InstanceNotFoundError, MessageDecodeError, TaskHubNotFoundError
from ..model import ExecutionStartedEvent, HistoryEvent, utc_now
from ..storage import TaskHubStorage

__all__ = [
    "FORMAT",
    "RecordedHistory",
    "export_history",
    "history_document",
    "parse_history_document",
    "read_history_file",
]

FORMAT = "durable-azstorage.history/1"


@dataclass(frozen=True)
class RecordedHistory:
    """An exported history: the events of one execution plus where they came from."""

    instance_id: str
    execution_id: str | None
    name: str | None
    events: list[HistoryEvent]
    runtime_status: str | None = None
    task_hub: str | None = None


def history_document(
    instance_id: str,
    events: list[HistoryEvent],
    *,
    execution_id: str | None,
    runtime_status: str | None,
    task_hub: str,
    exported_at: datetime | None = None,
) -> dict[str, Any]:
    started = next((e for e in events if isinstance(e, ExecutionStartedEvent)), None)
    return {
        "format": FORMAT,
        "taskHub": task_hub,
        "instanceId": instance_id,
        "executionId": execution_id,
        "name": started.name if started else None,
        "runtimeStatus": runtime_status,
        "exportedAt": (exported_at or utc_now()).isoformat().replace("+00:00", "Z"),
        "events": [history_event_to_tree(e) for e in events],
    }


async def export_history(account: StorageAccount, task_hub: str, instance_id: str) -> dict[str, Any]:
    """Read one instance's current execution (read only) as a history document."""
    async with await TaskHubStorage.discover(account, task_hub) as hub:
        record = await hub.instances.get(instance_id, fetch_input=False, fetch_output=False)
        try:
            load = await hub.history.load(instance_id)
        except ResourceNotFoundError as exc:
            raise TaskHubNotFoundError(f"no task hub {task_hub!r} in this account; check --task-hub-name") from exc
    if record is None and not load.events:
        raise InstanceNotFoundError(f"no instance {instance_id!r} in task hub {task_hub!r}")
    status = record.state.runtime_status if record is not None else None
    return history_document(
        instance_id, load.events, execution_id=load.execution_id,
        runtime_status=status.name if status is not None else None, task_hub=task_hub,
    )


def parse_history_document(data: Any, source: str = "history") -> RecordedHistory:
    """A parsed document; :class:`MessageDecodeError` (one line naming the problem) otherwise."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MessageDecodeError(f"{source}: not a history export (expected \"format\": \"{FORMAT}\")")
    trees = data.get("events")
    if not isinstance(trees, list):
        raise MessageDecodeError(f"{source}: \"events\" must be a list")
    events = []
    for i, tree in enumerate(trees):
        try:
            events.append(history_event_from_tree(tree, f"events[{i}]"))
        except MessageDecodeError as exc:
            raise MessageDecodeError(f"{source}: events[{i}]: {exc}") from exc
    return RecordedHistory(
        instance_id=str(data.get("instanceId") or ""),
        execution_id=data.get("executionId"),
        name=data.get("name"),
        events=events,
        runtime_status=data.get("runtimeStatus"),
        task_hub=data.get("taskHub"),
    )


def read_history_file(path: str | Path) -> RecordedHistory:
    """Load a file written by ``durable-azstorage export-history``."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MessageDecodeError(f"{source}: not JSON ({exc})") from exc
    return parse_history_document(data, source)
