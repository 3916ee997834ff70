"""Liveness and readiness over HTTP for a worker process (container probes, load balancers).

Why two answers: liveness must not depend on storage (restarting a pod does not fix an outage of
the storage account), readiness must (a worker that cannot read its Partitions table does no work,
and a rolling update should wait for the new pod to really take part). Readiness also turns to
503 the moment a stop begins, so an orchestrator counts the pod as leaving while it hands its
partitions over.

    GET /healthz  200 while the event loop runs and the partition loop has not died
    GET /readyz   200 once started, while the Partitions table was read within ``stale_after``
                  and no stop has begun; 503 with the reason otherwise
Both answer JSON: state, worker id, task hub, owned partitions, seconds since the last read.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from aiohttp import web

__all__ = ["HealthServer", "HealthState", "WorkerProbe"]

log = logging.getLogger(__name__)


class WorkerProbe(Protocol):
    """What the health server reads from a worker (``Worker`` satisfies it)."""

    @property
    def owned_partitions(self) -> list[str]: ...

    @property
    def last_partition_check(self) -> float | None: ...

    @property
    def partition_loop_failed(self) -> bool: ...


class HealthState:
    """The lifecycle the probes report: starting → running → stopping → stopped."""

    def __init__(self, worker: WorkerProbe, *, worker_id: str, task_hub: str, stale_after: float) -> None:
        self.worker = worker
        self.worker_id = worker_id
        self.task_hub = task_hub
        self.stale_after = stale_after
        self.state = "starting"

    def snapshot(self) -> dict[str, Any]:
        checked = self.worker.last_partition_check
        age = None if checked is None else round(time.monotonic() - checked, 3)
        return {
            "state": self.state,
            "worker_id": self.worker_id,
            "task_hub": self.task_hub,
            "owned_partitions": self.worker.owned_partitions,
            "seconds_since_partition_check": age,
        }

    def alive(self) -> tuple[bool, str]:
        if self.state == "running" and self.worker.partition_loop_failed:
            return False, "the partition loop has stopped unexpectedly"
        return True, "alive"

    def ready(self) -> tuple[bool, str]:
        if self.state != "running":
            return False, self.state
        checked = self.worker.last_partition_check
        if checked is None:
            return False, "the Partitions table has not been read yet"
        age = time.monotonic() - checked
        if age > self.stale_after:
            return False, f"the Partitions table was last read {age:.0f}s ago (storage unreachable?)"
        return True, "ready"


class HealthServer:
    """A tiny aiohttp server for the two probes; ``async with`` starts and stops it."""

    def __init__(self, health: HealthState, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.health = health
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._probe(self.health.alive))
        app.router.add_get("/readyz", self._probe(self.health.ready))
        return app

    def _probe(self, check: Any) -> Any:
        async def handler(_request: web.Request) -> web.Response:
            ok, reason = check()
            body = {**self.health.snapshot(), "ok": ok, "reason": reason}
            return web.json_response(body, status=200 if ok else 503)

        return handler

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = next(
            (int(a[1]) for a in self._runner.addresses if isinstance(a, tuple) and len(a) >= 2), self._port
        )
        log.info("worker.health_listening", extra={"host": self._host, "port": self.port})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
