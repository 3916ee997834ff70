"""``poison list|requeue|drop``: the quarantined messages of a task hub."""

from __future__ import annotations

from typing import Any

import click

from ..aio import TaskHubClient
from ..client import format_time
from ..errors import InstanceNotFoundError
from ._common import common_options, emit, run_async, with_client

__all__ = ["poison"]


@click.group()
def poison() -> None:
    """Quarantined (poison) messages: list, requeue, drop."""


@poison.command("list")
@common_options
@click.option("--queue", help="Only this queue.")
def poison_list(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, queue: str | None
) -> None:
    """List quarantined messages."""
    async def collect(c: TaskHubClient) -> list[dict[str, Any]]:
        return [
            {"queue": r.queue_name, "messageId": r.message_id, "instanceId": r.instance_id,
             "eventType": r.event_type, "dequeueCount": r.dequeue_count, "reason": r.reason,
             "quarantinedAt": format_time(r.quarantined_at)}
            for r in await c.list_poison_messages(queue)
        ]

    records = run_async(with_client(connection, setting, task_hub_name, collect))

    def human() -> None:
        for r in records:
            click.echo(f"{r['queue']}  {r['messageId']}  {r['instanceId'] or '-'}  {r['eventType'] or '-'}  "
                       f"{r['reason']}")
        click.echo(f"{len(records)} quarantined message(s)")

    emit(as_json, records, human)

def _one(name: str, requeue: bool) -> None:
    @poison.command(name, help="Put a quarantined message back on its queue." if requeue else "Delete it.")
    @common_options
    @click.option("--queue", required=True)
    @click.option("--message-id", required=True)
    def run(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, queue: str, message_id: str
    ) -> None:
        async def act(c: TaskHubClient) -> None:
            if not await c.release_poison_message(queue, message_id, requeue=requeue):
                raise InstanceNotFoundError(f"no quarantined message {message_id!r} in queue {queue!r}")

        run_async(with_client(connection, setting, task_hub_name, act))
        emit(as_json, {"queue": queue, "messageId": message_id, "operation": name},
              f"{'Requeued' if requeue else 'Dropped'} message '{message_id}' of queue '{queue}'.")


_one("requeue", True)
_one("drop", False)
