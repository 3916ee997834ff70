"""durable_azstorage running an azure-functions-durable 1.x app: the Functions path of ``durable-azstorage run``.

Same storage, same worker settings, same clients and the same counters as :mod:`.azstorage`;
only the user code differs: ``benchmarks/functions_app`` (the suite's orchestrators written
with the Durable Functions Python SDK) runs in a :class:`~durable_azstorage.functions.FunctionsHost`,
whose orchestrations go through the extension's protocol (context JSON rendered from history,
the SDK's cumulative action list numbered as DTFx does). Starts, events and signals use the
same :class:`TaskHubClient` calls as the durabletask column, so the two columns differ by the
SDK and its protocol only.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from durable_azstorage.functions import FunctionsHost

from .azstorage import AzStorageEngine

APP = Path(__file__).resolve().parent.parent / "functions_app"


class FunctionsEngine(AzStorageEngine):
    name = "durable_azstorage-functions"

    def __init__(self, connection_string: str, *, server_pid: int | None = None, **settings: Any) -> None:
        super().__init__(connection_string, server_pid=server_pid, **settings)
        self.host = FunctionsHost.from_path(
            APP, self._engine_account, task_hub_name=self.hub_name, port=0, **settings
        )
        self.worker = self.host.worker
        self.settings = self.host.settings

    async def start(self) -> None:
        from durable_azstorage.aio import TaskHubClient

        await self.host.start()
        self._client = await TaskHubClient.open(self._engine_account, self.hub_name)
        self._monitor = await TaskHubClient.open(self._monitor_account, self.hub_name)
        deadline = time.monotonic() + 60
        while len(self.worker.owned_partitions) < self.settings.partition_count:
            if time.monotonic() > deadline:
                raise TimeoutError("the Functions host did not acquire its partitions within 60 s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for client in (self._client, self._monitor):
            if client is not None:
                await client.close()
        await self.host.stop()


class FunctionsFullReplayEngine(FunctionsEngine):
    """The same app with ``orchestrator_cache_size=0``: every episode replays the whole history, as
    the Durable Functions extension does (and as this provider did before the kept executor)."""

    name = "durable_azstorage-functions-fullreplay"

    def __init__(self, connection_string: str, *, server_pid: int | None = None, **settings: Any) -> None:
        super().__init__(connection_string, server_pid=server_pid, orchestrator_cache_size=0, **settings)
