"""Peer: the durabletask SDK worker against the SDK's in-memory backend (``durabletask.testing``).

No persistence, no storage round trips: the upper bound for what the orchestration engine
itself (replay, gRPC work-item streaming, thread pools) costs in Python. The backend is a gRPC
server in this process, so its CPU counts as this process's CPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.entities import EntityInstanceId
from durabletask.testing import InMemoryOrchestrationBackend

from .. import app
from .base import Completion, Engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DurableTaskInMemoryEngine(Engine):
    name = "durabletask-inmem"

    def __init__(self) -> None:
        for noisy in ("durabletask", "durabletask-client", "durabletask-worker", "grpc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._port = _free_port()
        self._address = f"localhost:{self._port}"
        self.backend = InMemoryOrchestrationBackend(port=self._port, max_history_size=100_000)
        self.worker = dt_worker.TaskHubGrpcWorker(host_address=self._address, log_handler=logging.NullHandler())
        for fn in app.ORCHESTRATORS:
            self.worker.add_orchestrator(fn)
        for fn in app.ACTIVITIES:
            self.worker.add_activity(fn)
        self.worker.add_entity(app.Counter)
        self.client = dt_client.TaskHubGrpcClient(host_address=self._address, log_handler=logging.NullHandler())

    async def start(self) -> None:
        self.backend.start()
        self.worker.start()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        await asyncio.to_thread(self.worker.stop)
        self.client.close()
        self.backend.stop(grace=1)

    async def start_many(self, orchestrator: str, inputs: list[Any]) -> list[str]:
        def run() -> list[str]:
            return [self.client.schedule_new_orchestration(orchestrator, input=value) for value in inputs]

        return await asyncio.to_thread(run)

    def _completion(self, instance_id: str, timeout: float) -> Completion:
        state = self.client.wait_for_orchestration_completion(instance_id, timeout=int(max(1, timeout)))
        if state is None:
            raise TimeoutError(f"{instance_id} is unknown")
        seconds = (state.last_updated_at - state.created_at).total_seconds()
        ok = state.runtime_status == dt_client.OrchestrationStatus.COMPLETED
        return Completion(instance_id, ok, state.serialized_output, seconds)

    async def wait_all(self, instance_ids: list[str], timeout: float) -> list[Completion]:
        deadline = time.monotonic() + timeout

        def run() -> list[Completion]:
            return [self._completion(i, deadline - time.monotonic()) for i in instance_ids]

        return await asyncio.to_thread(run)

    async def wait_fast(self, instance_id: str, timeout: float) -> Completion:
        # The backend answers WaitForInstanceCompletion when the state changes: no polling.
        return await asyncio.to_thread(self._completion, instance_id, timeout)

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        await asyncio.to_thread(self.client.raise_orchestration_event, instance_id, name, data=data)

    async def signal_entity(self, entity: str, key: str, operation: str, data: Any) -> None:
        await asyncio.to_thread(self.client.signal_entity, EntityInstanceId(entity, key), operation, data)

    async def entity_state(self, entity: str, key: str) -> Any:
        metadata = await asyncio.to_thread(self.client.get_entity, EntityInstanceId(entity, key))
        if metadata is None:
            return None
        state = metadata.get_state()  # JSON text when no type is given
        return json.loads(state) if isinstance(state, str) else state
