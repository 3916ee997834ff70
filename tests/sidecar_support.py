"""Runs a :class:`Sidecar` on its own event loop in a thread, so the durabletask SDK's
synchronous worker and client (threads and blocking gRPC calls) talk to it exactly as they
would to a sidecar in another process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from durable_azstorage.connection import StorageAccount
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.sidecar import Sidecar


def fast_settings(task_hub_name: str, **overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "task_hub_name": task_hub_name,
        "partition_count": 2,
        "max_queue_polling_interval": timedelta(seconds=1),
        "lease_interval": timedelta(seconds=10),
        "lease_acquire_interval": timedelta(seconds=2),
        "lease_claim_duration": timedelta(seconds=10),
        "drain_timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return WorkerSettings(**values)


class SidecarThread:
    """``with SidecarThread(...) as sidecar:`` → ``sidecar.address`` is ``localhost:PORT``."""

    def __init__(self, account: StorageAccount, settings: WorkerSettings, **kwargs: Any) -> None:
        self._make = lambda: Sidecar(account, settings, port=0, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sidecar-loop", daemon=True)
        self.sidecar: Sidecar | None = None

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def address(self) -> str:
        assert self.sidecar is not None
        return f"localhost:{self.sidecar.port}"

    def __enter__(self) -> SidecarThread:
        self._thread.start()

        async def start() -> Sidecar:
            sidecar = self._make()
            await sidecar.start()
            return sidecar

        self.sidecar = self.run(start())
        return self

    def stop(self) -> None:
        if self.sidecar is not None:
            self.run(self.sidecar.stop(), timeout=120)
            self.sidecar = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def sdk_worker(address: str, register: Any, **kwargs: Any) -> Iterator[Any]:
    """A durabletask ``TaskHubGrpcWorker``, unchanged, connected to ``address``."""
    from durabletask.worker import TaskHubGrpcWorker

    worker = TaskHubGrpcWorker(host_address=address, **kwargs)
    register(worker)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
