"""The embedded demo behind ``durable-azstorage demo`` and ``./dev.sh demo``.

Starts a persistent Azurite under the data folder (unless a connection is given), proves
the storage round trip on the task hub's resources, prints where the data lives and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import click

from .azurite import Azurite
from .connection import StorageAccount
from .storage.blobs import LargePayloadStore
from .storage.names import TaskHubNames

__all__ = ["run_demo"]


@contextlib.contextmanager
def _storage(data_dir: Path, connection_string: str | None) -> Iterator[tuple[str, str]]:
    if connection_string:
        yield connection_string, "the storage account in the connection string"
        return
    location = data_dir / "azurite"
    with Azurite(location=location) as emulator:
        yield emulator.connection_string, f"Azurite data folder {location.resolve()}"


async def _round_trip(account: StorageAccount, names: TaskHubNames) -> str:
    async with account.queue_service() as queues, account.table_service() as tables, account.blob_service() as blobs:
        await tables.create_table_if_not_exists(names.instances_table)
        queue = queues.get_queue_client(names.control_queue(0))
        with contextlib.suppress(Exception):
            await queue.create_queue()
        marker = uuid.uuid4().hex
        await queue.send_message(f'{{"demo":"{marker}"}}')
        received = [m async for m in queue.receive_messages(max_messages=32)]
        for message in received:
            await queue.delete_message(message)
        payloads = LargePayloadStore(blobs, names.large_messages_container)
        await payloads.upload_text(f"demo/{marker}.json.gz", '{"hello":"world"}')
        text = await payloads.download_text(f"demo/{marker}.json.gz")
        await payloads.delete(f"demo/{marker}.json.gz")
        ok = any(marker in str(m.content) for m in received)
        return f"queue round trip {'ok' if ok else 'FAILED'}, blob round trip {text}"


def run_demo(*, data_dir: Path, connection_string: str | None, task_hub_name: str) -> int:
    names = TaskHubNames(task_hub_name)
    with _storage(data_dir, connection_string) as (conn, where):
        account = StorageAccount.from_connection_string(conn)
        result = asyncio.run(_round_trip(account, names))
        click.echo(f"Task hub {task_hub_name}: {result}")
        click.echo(f"Data lives in: {where}")
    return 0
