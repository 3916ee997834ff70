"""durable_azstorage: one Worker and the clients in this process, Azure Storage (Azurite) outside.

Three accounts with separate transaction counters keep the bill honest:

* ``engine``  - the worker plus the client calls a real application makes (start, raise
  event, signal): this is what "transactions per orchestration" reports;
* ``monitor`` - the benchmark's own status polls (waiting for completion); reported apart,
  since a real application may not poll at all.

Counting uses :class:`durable_azstorage.metrics.TransactionCounter`, an azure-core
``SansIOHTTPPolicy`` installed through ``raw_request_hook``: the storage SDKs build their own
pipelines and ignore ``per_call_policies``, but every one of them calls that hook once per
HTTP request (retries included).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.connection import StorageAccount
from durable_azstorage.metrics import TransactionCounter, classify_request
from durable_azstorage.model import OrchestrationStatus
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage import TaskHubResources
from durable_azstorage.worker import Worker

from .. import app
from .base import Completion, Engine

_RUNNING = (OrchestrationStatus.Running, OrchestrationStatus.Pending, OrchestrationStatus.Suspended, None)


def service_ports(connection_string: str) -> dict[int, str]:
    """Azurite serves blob/queue/table on three ports of one host; map them for the counter."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    ports: dict[int, str] = {}
    for key, service in (("BlobEndpoint", "blob"), ("QueueEndpoint", "queue"), ("TableEndpoint", "table")):
        if key in parts:
            port = urlsplit(parts[key]).port
            if port:
                ports[port] = service
    return ports


class FailedRequests:
    """``raw_response_hook``: counts responses with status >= 400 by (service, operation, status).

    A 404 on a delete or a 409 on a create is often expected (DTAS-style races, idempotent
    creates), but each is still a billed transaction; retries show up as repeated operations.
    """

    def __init__(self, ports: dict[int, str]) -> None:
        self._ports = ports
        self.counts: Counter[str] = Counter()

    def __call__(self, response: Any) -> None:
        http = response.http_response
        if http.status_code >= 400:
            request = response.http_request
            service, operation = classify_request(request.method, request.url, self._ports)
            self.counts[f"{service}.{operation}.{http.status_code}"] += 1


class AzStorageEngine(Engine):
    name = "durable_azstorage"
    fresh_per_workload = True

    def __init__(self, connection_string: str, *, server_pid: int | None = None, **settings: Any) -> None:
        self.server_pid = server_pid
        ports = service_ports(connection_string)
        self.counters = {"engine": TransactionCounter(ports), "monitor": TransactionCounter(ports)}
        base = self._plain_account = StorageAccount.from_connection_string(connection_string)
        self.failed = FailedRequests(ports)
        self._engine_account = base.with_client_kwargs(
            **self.counters["engine"].client_kwargs(), raw_response_hook=self.failed
        )
        self._monitor_account = base.with_client_kwargs(**self.counters["monitor"].client_kwargs())
        self.hub_name = "bench" + uuid.uuid4().hex[:10]
        self.settings = WorkerSettings(task_hub_name=self.hub_name, **settings)
        self.worker = Worker(self._engine_account, self.settings)
        for fn in app.ORCHESTRATORS:
            self.worker.add_orchestrator(fn)
        for fn in app.ACTIVITIES:
            self.worker.add_activity(fn)
        self.entities = hasattr(self.worker, "add_entity")
        if self.entities:
            self.worker.add_entity(app.Counter)
        self._client: TaskHubClient | None = None
        self._monitor: TaskHubClient | None = None

    def unsupported(self, workload: str) -> str | None:
        if workload == "entity-ops" and not (self.entities and hasattr(TaskHubClient, "signal_entity")):
            return "entities not implemented in this durable_azstorage build"
        return None

    @property
    def client(self) -> TaskHubClient:
        assert self._client is not None
        return self._client

    @property
    def monitor(self) -> TaskHubClient:
        assert self._monitor is not None
        return self._monitor

    async def start(self) -> None:
        await self.worker.start()
        self._client = await TaskHubClient.open(self._engine_account, self.hub_name)
        self._monitor = await TaskHubClient.open(self._monitor_account, self.hub_name)
        deadline = time.monotonic() + 60
        while len(self.worker.owned_partitions) < self.settings.partition_count:
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not acquire its partitions within 60 s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for client in (self._client, self._monitor):
            if client is not None:
                await client.close()
        await self.worker.stop()

    async def cleanup(self) -> None:
        names = TaskHubNames(self.hub_name, self.settings.partition_count)
        await TaskHubResources(self._plain_account, names).delete()

    async def start_many(self, orchestrator: str, inputs: list[Any]) -> list[str]:
        gate = asyncio.Semaphore(10)

        async def one(value: Any) -> str:
            async with gate:
                return await self.client.schedule_new_orchestration(orchestrator, input=value)

        return list(await asyncio.gather(*(one(v) for v in inputs)))

    async def _poll(self, instance_id: str, deadline: float, interval: float) -> Completion:
        while True:
            state = await self.monitor.get_orchestration_state(instance_id)
            if state is not None and state.runtime_status not in _RUNNING:
                end = state.completed_time or state.last_updated_time
                seconds = (end - state.created_time).total_seconds() if end and state.created_time else None
                ok = state.runtime_status is OrchestrationStatus.Completed
                return Completion(instance_id, ok, state.output, seconds)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} did not complete in time")
            await asyncio.sleep(interval)

    async def wait_all(self, instance_ids: list[str], timeout: float) -> list[Completion]:
        deadline = time.monotonic() + timeout
        return [await self._poll(i, deadline, 0.05) for i in instance_ids]

    async def wait_fast(self, instance_id: str, timeout: float) -> Completion:
        return await self._poll(instance_id, time.monotonic() + timeout, 0.005)

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        await self.client.raise_event(instance_id, name, data)

    async def signal_entity(self, entity: str, key: str, operation: str, data: Any) -> None:
        await self.client.signal_entity(entity, operation, data, key=key)

    async def entity_state(self, entity: str, key: str) -> Any:
        metadata = await self.monitor.get_entity(entity, key=key)
        return None if metadata is None else metadata.state_value()

    def reset_transactions(self) -> None:
        for counter in self.counters.values():
            counter.reset()
        self.failed.counts.clear()

    def failed_requests(self) -> dict[str, int]:
        return dict(self.failed.counts.most_common())

    def transactions(self) -> dict[str, Counter[tuple[str, str]]]:
        return {role: counter.snapshot() for role, counter in self.counters.items()}


def default_settings() -> dict[str, Any]:
    """Worker settings of the benchmark: the library defaults (DTAS polling back-off up to 30 s)."""
    return {"max_queue_polling_interval": timedelta(seconds=30)}
