"""Runs a :class:`Sidecar` on its own event loop in a thread, so the durabletask SDK's
synchronous worker and client (threads and blocking gRPC calls) talk to it exactly as they
would to a sidecar in another process."""

from __future__ import annotations

import asyncio
import functools
import inspect
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


HOSTING_MODES = ("in-process", "sidecar")


def _sync_activity(fn: Any) -> Any:
    """durabletask 1.12's gRPC worker calls activities in its thread pool and does not await an
    ``async def`` one (it would try to serialise the coroutine); our in-process runtime awaits
    them. Through the sidecar the test runs the same coroutine to completion in that thread."""

    @functools.wraps(fn)
    def run(ctx: Any, value: Any) -> Any:
        return asyncio.run(fn(ctx, value))

    return run


class HostedWorker:
    """Registers durabletask functions and runs them in-process, or through the sidecar with the
    SDK's own ``TaskHubGrpcWorker`` (same event loop; the SDK worker uses its own threads).

    ``async with HostedWorker(...) as worker`` yields the :class:`Worker` host either way, so
    tests that look at partitions or storage work unchanged in both modes.
    """

    def __init__(self, account: StorageAccount, settings: WorkerSettings, mode: str) -> None:
        self.account, self.settings, self.mode = account, settings, mode
        self._registrations: list[tuple[str, Any, str | None]] = []
        self._sidecar: Sidecar | None = None
        self._sdk: Any = None
        self._worker: Any = None

    def add_orchestrator(self, fn: Any) -> None:
        self._registrations.append(("add_orchestrator", fn, None))

    def add_activity(self, fn: Any) -> None:
        self._registrations.append(("add_activity", fn, None))

    def add_entity(self, fn: Any, name: str | None = None) -> None:
        self._registrations.append(("add_entity", fn, name))

    def _apply(self, target: Any) -> None:
        sdk = self.mode != "in-process"
        for method, fn, name in self._registrations:
            if sdk and method == "add_activity" and inspect.iscoroutinefunction(fn):
                fn = _sync_activity(fn)
            if name is None:
                getattr(target, method)(fn)
            else:
                getattr(target, method)(fn, name)

    async def __aenter__(self) -> Any:
        if self.mode == "in-process":
            from durable_azstorage.worker import Worker

            self._worker = Worker(self.account, self.settings)
            self._apply(self._worker)
            await self._worker.start()
            return self._worker
        from durabletask.worker import TaskHubGrpcWorker

        sidecar = self._sidecar = Sidecar(self.account, self.settings, port=0)
        await sidecar.start()
        self._sdk = TaskHubGrpcWorker(host_address=f"localhost:{sidecar.port}")
        self._apply(self._sdk)
        self._sdk.start()
        deadline = asyncio.get_running_loop().time() + 30
        while sidecar.broker.worker_count == 0:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the SDK worker did not connect to the sidecar within 30 s")
            await asyncio.sleep(0.05)
        return sidecar.worker

    async def __aexit__(self, *exc: object) -> None:
        if self._sdk is not None:
            await asyncio.to_thread(self._sdk.stop)
        if self._sidecar is not None:
            await self._sidecar.stop()
        if self._worker is not None:
            await self._worker.stop()
