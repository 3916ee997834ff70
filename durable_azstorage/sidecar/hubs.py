"""Which task hub a call is for, and one open :class:`TaskHubClient` per hub.

SDK clients name the hub in the ``taskhub`` call metadata (azure-functions-durable 2.x does;
durabletask's own client sends nothing): a call without it goes to the sidecar's own hub.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..aio import TaskHubClient
from ..codec.names import validate_task_hub_name
from ..connection import StorageAccount
from ..errors import TaskHubNotFoundError
from ..storage import TaskHubStorage

__all__ = ["HubClients", "task_hub_of"]

log = logging.getLogger(__name__)

TASK_HUB_METADATA = "taskhub"


def task_hub_of(context: Any) -> str | None:
    """The ``taskhub`` metadata value of a call, if any."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() == TASK_HUB_METADATA and value:
            return str(value)
    return None


class HubClients:
    """Lazily opened clients, one per task hub; the default hub's is given or opened first."""

    def __init__(self, account: StorageAccount, default_hub: str, *, default_client: TaskHubClient | None = None):
        self._account = account
        self.default_hub = default_hub
        self._clients: dict[str, TaskHubClient] = {}
        if default_client is not None:
            self._clients[default_hub.lower()] = default_client
        self._owned: set[str] = set()
        self._lock = asyncio.Lock()

    def set_default(self, client: TaskHubClient) -> None:
        """Serve the default hub through ``client`` (not closed by :meth:`close`)."""
        self._clients[self.default_hub.lower()] = client

    @property
    def account(self) -> StorageAccount:
        return self._account

    async def get(self, hub: str | None) -> TaskHubClient:
        name = hub or self.default_hub
        key = name.lower()
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = await self._open(name)
                self._clients[key] = client
                self._owned.add(key)
        return client

    async def _open(self, name: str) -> TaskHubClient:
        validate_task_hub_name(name)
        storage = await TaskHubStorage.discover(self._account, name)
        if await storage.stored_partition_count() is None:
            await storage.close()
            raise TaskHubNotFoundError(
                f"task hub {name!r} does not exist in this storage account; start a worker or sidecar for it first"
            )
        log.info("sidecar.hub_opened", extra={"task_hub": name})
        return TaskHubClient(storage)

    def forget(self, hub: str) -> None:
        """After a hub was deleted: the next call opens (and checks) it again."""
        self._clients.pop(hub.lower(), None)

    async def close(self) -> None:
        for key in list(self._owned):
            client = self._clients.pop(key, None)
            if client is not None:
                await client.close()
        self._owned.clear()
