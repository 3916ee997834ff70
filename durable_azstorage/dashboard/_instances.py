"""Instance queries and views for the dashboard, straight on the Instances and History tables.

The management API's ``GET /instances`` filters by status, creation time and id prefix; the
dashboard also filters by orchestration-name prefix and last-update time. All of it becomes
one OData filter evaluated by the table service, and pages follow the service's continuation
tokens, so a hub of any size costs one bounded query per page (never a full scan).
Input and Output are left out of list queries (they may be large blobs).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..aio import TaskHubClient
from ..client import parse_json_or_text, raw_event_dict
from ..model import ExecutionStartedEvent, InstanceQuery, OrchestrationState, OrchestrationStatus
from ._timeline import build_timeline, iso_ms

__all__ = ["instance_detail", "instance_row", "query_page"]

_PREVIEW_CHARS = 200
_PAGE_FILL_SECONDS = 2.0


async def query_page(
    client: TaskHubClient, query: InstanceQuery, *, top: int, continuation_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``top`` rows and the token for the next page (None at the end).

    A filter on non-key columns can make service pages short or empty; like DTAS's entity
    query we keep reading for up to 2 s to fill the page, asking each time only for what is
    missing, so the token always points just after the last row returned.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    rows: list[dict[str, Any]] = []
    token = continuation_token
    while True:
        page = replace(query, page_size=top - len(rows), fetch_input=False, fetch_output=False)
        result = await client.query_instances(page, continuation_token=token)
        rows.extend(instance_row(state) for state in result.instances)
        token = result.continuation_token
        if len(rows) >= top or token is None or loop.time() - started > _PAGE_FILL_SECONDS:
            return rows, token


def _preview(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def instance_row(state: OrchestrationState) -> dict[str, Any]:
    """One line of the instances table (no payloads; custom status cut to a preview)."""
    return {
        "instanceId": state.instance_id,
        "executionId": state.execution_id,
        "name": state.name,
        "runtimeStatus": state.runtime_status.name if state.runtime_status is not None else "Unknown",
        "createdTime": iso_ms(state.created_time),
        "lastUpdatedTime": iso_ms(state.last_updated_time),
        "completedTime": iso_ms(state.completed_time),
        "customStatus": _preview(state.custom_status),
    }


async def instance_detail(client: TaskHubClient, instance_id: str, now: datetime) -> dict[str, Any] | None:
    """Everything the instance page shows: state, payloads, failure, history, timeline, parent."""
    state = await client.get_orchestration_state(instance_id)
    if state is None:
        return None
    events = list((await client.storage.history.load(instance_id)).events)
    started = next((e for e in events if isinstance(e, ExecutionStartedEvent)), None)
    parent = started.parent_instance if started is not None else None
    parent_id = parent.orchestration_instance.instance_id if parent and parent.orchestration_instance else None
    body = instance_row(state)
    body.update(
        {
            "customStatus": parse_json_or_text(state.custom_status),
            "input": parse_json_or_text(state.input),
            "output": parse_json_or_text(state.output),
            "failure": _failure(state, events),
            "parentInstanceId": parent_id,
            "generation": state.generation,
            "tags": state.tags,
            "history": [_history_row(e) for e in events],
            "timeline": build_timeline(events, state.runtime_status, now),
        }
    )
    return body


def _history_row(event: Any) -> dict[str, Any]:
    row = raw_event_dict(event)
    row["Timestamp"] = iso_ms(event.timestamp)
    safe: dict[str, Any] = json.loads(json.dumps(row, default=str))  # every value JSON-safe
    return safe


def _failure(state: OrchestrationState, events: list[Any]) -> dict[str, Any] | None:
    """The orchestration's failure: structured details from history, else the Output text."""
    if state.runtime_status != OrchestrationStatus.Failed:
        return None
    for event in reversed(events):
        details = getattr(event, "failure_details", None)
        if details is not None and event.event_type.name == "ExecutionCompleted":
            return {
                "errorType": details.error_type,
                "message": details.error_message,
                "stackTrace": details.stack_trace,
            }
    return {"errorType": None, "message": state.output, "stackTrace": None}
