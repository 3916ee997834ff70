"""One task hub's storage, wired once: clients, stores and queues behind one object.

Both the worker and the client use it, so every storage operation of a hub goes through
the same objects (and the same transaction-counting pipeline policies, when configured).
"""

from __future__ import annotations

import logging
from types import TracebackType

from ..codec.names import TaskHubNames
from ..connection import StorageAccount
from .blobs import LargePayloadStore
from .history_store import HistoryStore
from .instance_store import InstanceStore
from .partition_table import PartitionTable
from .poison_store import PoisonStore
from .queues import TaskHubQueue

__all__ = ["TaskHubStorage"]

log = logging.getLogger(__name__)


class TaskHubStorage:
    """The async clients and stores of one task hub; ``async with`` closes them."""

    def __init__(self, account: StorageAccount, names: TaskHubNames) -> None:
        self.account = account
        self.names = names
        self.queue_service = account.queue_service()
        self.table_service = account.table_service()
        self.blob_service = account.blob_service()
        self.payloads = LargePayloadStore(self.blob_service, names.large_messages_container)
        self.history = HistoryStore(self.table_service.get_table_client(names.history_table), self.payloads)
        self.instances = InstanceStore(
            self.table_service.get_table_client(names.instances_table), self.payloads, names.task_hub
        )
        self.poison = PoisonStore(self.table_service.get_table_client(names.poison_table), self.payloads)
        self.partitions = PartitionTable(self.table_service.get_table_client(names.partitions_table))
        self._queues: dict[str, TaskHubQueue] = {}

    def queue(self, name: str) -> TaskHubQueue:
        """The one :class:`TaskHubQueue` object per queue name, so sends wake local pollers."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = TaskHubQueue(self.queue_service.get_queue_client(name), self.payloads)
        return queue

    def control_queue_for(self, instance_id: str) -> TaskHubQueue:
        return self.queue(self.names.control_queue_for(instance_id))

    @property
    def work_item_queue(self) -> TaskHubQueue:
        return self.queue(self.names.work_item_queue)

    @classmethod
    async def discover(
        cls, account: StorageAccount, task_hub_name: str, *, default_partition_count: int = 4
    ) -> TaskHubStorage:
        """Open an existing hub, taking its partition count from the Partitions table.

        That is how the scale controller learns the count (DTAS ``GetControlQueuesAsync``);
        a client must route by the same count the workers use.
        """
        probe = cls(account, TaskHubNames(task_hub_name, default_partition_count))
        try:
            count = await probe.stored_partition_count()
        except BaseException:
            await probe.close()  # else an unreachable account leaves "Unclosed client session" noise
            raise
        if count is None or count == default_partition_count:
            return probe
        await probe.close()
        return cls(account, TaskHubNames(task_hub_name, count))

    async def stored_partition_count(self) -> int | None:
        return await self.partitions.count()

    async def close(self) -> None:
        await self.queue_service.close()
        await self.table_service.close()
        await self.blob_service.close()

    async def __aenter__(self) -> TaskHubStorage:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
