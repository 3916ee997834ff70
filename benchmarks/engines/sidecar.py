"""durable_azstorage through its gRPC sidecar: the durabletask SDK's own worker and client.

Same storage, same worker host and the same benchmark code as :mod:`.azstorage`, but user code
runs in an unchanged ``TaskHubGrpcWorker`` connected to a :class:`~durable_azstorage.sidecar.Sidecar`
in this process, and starts, events and signals go through ``TaskHubGrpcClient``. Completion
is observed the way :mod:`.azstorage` observes it (the monitor account's status polls), so the
two columns differ only by the gRPC hop. Sidecar and SDK worker share this process, as the
in-memory peer's backend and worker do, so CPU compares like with like.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.entities import EntityInstanceId

from durable_azstorage.sidecar import Sidecar
from durable_azstorage.worker import Worker

from .. import app
from .azstorage import AzStorageEngine


class SidecarEngine(AzStorageEngine):
    name = "durable_azstorage-sidecar"

    def __init__(self, connection_string: str, *, server_pid: int | None = None, **settings: Any) -> None:
        from durable_azstorage.sidecar.server import SIDECAR_ACTIVITY_SLOTS

        settings.setdefault("max_concurrent_activities", SIDECAR_ACTIVITY_SLOTS)  # the sidecar's default
        super().__init__(connection_string, server_pid=server_pid, **settings)
        for noisy in ("durabletask", "durabletask-client", "durabletask-worker", "grpc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.sidecar = Sidecar(self._engine_account, self.settings, port=0)
        self.worker: Worker = self.sidecar.worker
        self.sdk_worker: Any = None
        self.sdk_client: Any = None

    async def start(self) -> None:
        await self.sidecar.start()
        address = f"localhost:{self.sidecar.port}"
        self.sdk_worker = dt_worker.TaskHubGrpcWorker(host_address=address, log_handler=logging.NullHandler())
        for fn in app.ORCHESTRATORS:
            self.sdk_worker.add_orchestrator(fn)
        for fn in app.ACTIVITIES:
            self.sdk_worker.add_activity(fn)
        self.sdk_worker.add_entity(app.Counter)
        self.sdk_worker.start()
        self.sdk_client = dt_client.TaskHubGrpcClient(host_address=address, log_handler=logging.NullHandler())
        await self._open_clients()
        deadline = time.monotonic() + 60
        wanted = self.settings.partition_count
        while self.sidecar.broker.worker_count == 0 or len(self.worker.owned_partitions) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError("the sidecar did not get its partitions and a connected worker within 60 s")
            await asyncio.sleep(0.05)

    async def _open_clients(self) -> None:
        from durable_azstorage.aio import TaskHubClient

        self._client = await TaskHubClient.open(self._engine_account, self.hub_name)
        self._monitor = await TaskHubClient.open(self._monitor_account, self.hub_name)

    async def stop(self) -> None:
        if self.sdk_worker is not None:
            await asyncio.to_thread(self.sdk_worker.stop)
        if self.sdk_client is not None:
            self.sdk_client.close()
        for client in (self._client, self._monitor):
            if client is not None:
                await client.close()
        await self.sidecar.stop()

    async def start_many(self, orchestrator: str, inputs: list[Any]) -> list[str]:
        def run() -> list[str]:
            return [self.sdk_client.schedule_new_orchestration(orchestrator, input=value) for value in inputs]

        return await asyncio.to_thread(run)

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        await asyncio.to_thread(self.sdk_client.raise_orchestration_event, instance_id, name, data=data)

    async def signal_entity(self, entity: str, key: str, operation: str, data: Any) -> None:
        await asyncio.to_thread(self.sdk_client.signal_entity, EntityInstanceId(entity, key), operation, data)
