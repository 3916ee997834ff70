"""Create, describe and delete a task hub's storage resources, in the DTAS order.

Creation is idempotent and follows ``GetTaskHubCreatorTask``: app-lease container and its
info blob, then the Partitions table with one row per control queue, then (in parallel) the
History and Instances tables, the work-item queue and the control queues. The large-message
container is created lazily on first use, as DTAS does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from ..codec.names import TaskHubNames
from ..connection import StorageAccount
from .partition_table import PartitionTable

__all__ = ["TaskHubDescription", "TaskHubResources"]

log = logging.getLogger(__name__)


@dataclass
class TaskHubDescription:
    """Which resources of a hub exist, and how deep its queues are."""

    task_hub: str
    partition_count: int | None
    tables: dict[str, bool] = field(default_factory=dict)
    queues: dict[str, int | None] = field(default_factory=dict)
    containers: dict[str, bool] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return any(self.tables.values()) or any(v is not None for v in self.queues.values())


class TaskHubResources:
    """Create, describe and delete one hub's tables, queues and containers (no worker or client state)."""

    def __init__(self, account: StorageAccount, names: TaskHubNames) -> None:
        self._account = account
        self.names = names

    async def create(self) -> None:
        names = self.names
        async with (
            self._account.blob_service() as blobs,
            self._account.table_service() as tables,
            self._account.queue_service() as queues,
        ):
            lease_container = blobs.get_container_client(names.app_lease_container)
            await _ignore_exists(lease_container.create_container())
            await _ignore_exists(lease_container.upload_blob(names.app_lease_info_blob, b"{}", overwrite=False))
            await _ignore_exists(tables.create_table(names.partitions_table))
            await PartitionTable(tables.get_table_client(names.partitions_table)).create_rows(names.control_queues)
            work = [_ignore_exists(tables.create_table(t)) for t in (names.history_table, names.instances_table)]
            work.append(_ignore_exists(tables.create_table(names.poison_table)))
            work += [
                _ignore_exists(queues.get_queue_client(q).create_queue())
                for q in (names.work_item_queue, *names.control_queues)
            ]
            await asyncio.gather(*work)
        log.info("taskhub.created", extra={"task_hub": names.task_hub, "partitions": names.partition_count})

    async def delete(self) -> None:
        """Delete every resource of the hub; missing ones are fine."""
        names = self.names
        async with (
            self._account.blob_service() as blobs,
            self._account.table_service() as tables,
            self._account.queue_service() as queues,
        ):
            work = [
                _ignore_missing(tables.delete_table(t))
                for t in (names.history_table, names.instances_table, names.partitions_table, names.poison_table)
            ]
            work += [
                _ignore_missing(queues.get_queue_client(q).delete_queue())
                for q in (names.work_item_queue, *names.control_queues)
            ]
            work += [
                _ignore_missing(blobs.get_container_client(c).delete_container())
                for c in (names.large_messages_container, names.app_lease_container, names.leases_container)
            ]
            await asyncio.gather(*work)
        log.info("taskhub.deleted", extra={"task_hub": names.task_hub})

    async def describe(self) -> TaskHubDescription:
        names = self.names
        async with (
            self._account.blob_service() as blobs,
            self._account.table_service() as tables,
            self._account.queue_service() as queues,
        ):
            existing_tables = {t.name async for t in tables.list_tables()}
            count: int | None = None
            if names.partitions_table in existing_tables:
                count = await PartitionTable(tables.get_table_client(names.partitions_table)).count() or 0
            description = TaskHubDescription(task_hub=names.task_hub, partition_count=count)
            for table in (names.history_table, names.instances_table, names.partitions_table, names.poison_table):
                description.tables[table] = table in existing_tables
            for queue in (names.work_item_queue, *names.control_queues):
                try:
                    props = await queues.get_queue_client(queue).get_queue_properties()
                    description.queues[queue] = int(props.approximate_message_count or 0)
                except ResourceNotFoundError:
                    description.queues[queue] = None
            for container in (names.large_messages_container, names.app_lease_container):
                description.containers[container] = await blobs.get_container_client(container).exists()
        return description


async def _ignore_exists(operation: object) -> None:
    try:
        await operation  # type: ignore[misc]
    except ResourceExistsError:
        pass


async def _ignore_missing(operation: object) -> None:
    try:
        await operation  # type: ignore[misc]
    except ResourceNotFoundError:
        pass
