"""Starts and stops the listeners of an app's timer, queue and blob triggered functions.

Each invocation gets what the Python worker would pass: the trigger value converted by the
parameter's annotation (``func.TimerRequest``; ``func.QueueMessage`` or ``str``/``bytes``;
``func.InputStream`` or ``str``/``bytes``), the ``durableClient`` binding JSON, and the storage
input/output bindings (:mod:`._bindings`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from ..app_files import AppFiles, ci_value
from ..errors import ConfigurationError
from ._bindings import BindingRuntime, parameter_kind, resolve_settings
from ._connections import Connections, host_id
from ._index import CLIENT_BINDINGS, AppIndex, TriggerFunction
from ._queue_trigger import QueueListener, QueueOptions
from ._singleton import SingletonListener
from ._timer import ScheduleMonitor, TimerListener
from ._timer_schedule import duration_setting, parse_schedule

__all__ = ["TriggerHost", "TriggerOptions"]

log = logging.getLogger(__name__)


class _Listener(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class TriggerOptions:
    """Knobs for tests and operators; the defaults are the host's."""

    lock_recovery_interval: timedelta | None = None
    """How often a host without a timer's lock tries to take it over; default host.json
    ``singleton.listenerLockRecoveryPollingInterval`` (1 minute)."""
    blob_polling_interval: timedelta = timedelta(seconds=10)
    """How often blob-trigger containers are listed."""


class TriggerHost:
    """All trigger listeners of one app; ``start`` after the HTTP server (client URLs), ``stop`` first."""

    def __init__(
        self,
        index: AppIndex,
        connections: Connections,
        runtime: BindingRuntime,
        files: AppFiles,
        client_binding: Callable[[], str],
        options: TriggerOptions | None = None,
    ) -> None:
        self.index = index
        self.connections = connections
        self.runtime = runtime
        self.files = files
        self.host_id = host_id(Path(index.root))
        self._client_binding = client_binding
        self.options = options or TriggerOptions()
        self._services: list[BlobServiceClient | QueueServiceClient] = []
        self.singletons: dict[str, SingletonListener] = {}
        """Timer functions' listener locks, by function name (``.listening`` says who fires)."""
        self.listeners: dict[str, _Listener] = {}

    async def start(self) -> None:
        starters = {"timertrigger": self._start_timer, "queuetrigger": self._start_queue,
                    "blobtrigger": self._start_blob}
        for function in self.index.triggers:
            if _truthy(os.environ.get(f"AzureWebJobs.{function.name}.Disabled", "")):
                log.info("functions.function_disabled", extra={"function_name": function.name})
                continue
            try:
                await starters[function.trigger.type](function)
            except (ValueError, AzureError, OSError) as exc:  # one function down, the others run
                problem = f"function {function.name!r} is not listening: {exc}"
                self.index.problems.append(problem)
                log.error("functions.trigger_not_started", extra={"function_name": function.name, "error": str(exc)})
        if self.index.triggers:
            log.info("functions.triggers_started", extra={"host_id": self.host_id,
                                                          "functions": [f.name for f in self.index.triggers]})

    async def stop(self) -> None:
        for singleton in self.singletons.values():
            await singleton.end()
        for listener in self.listeners.values():  # idempotent: timers were stopped with their lock
            await listener.stop()
        for service in self._services:
            with contextlib.suppress(Exception):
                await service.close()
        self.singletons.clear()
        self.listeners.clear()
        self._services.clear()

    # ------------------------------------------------------------------ invocation
    async def invoke(self, function: TriggerFunction, value: Any, data: Mapping[str, Any]) -> Any:
        kwargs: dict[str, Any] = {function.trigger.name: value}
        for binding in function.bindings:
            if binding.type in CLIENT_BINDINGS:
                kwargs[binding.name] = self._client_binding()
        log.info("functions.trigger_invoked", extra={"function_name": function.name,
                                                     "trigger": function.trigger.type})
        return await self.runtime.invoke(function.function, kwargs, function.bindings, data)

    # ------------------------------------------------------------------ timers
    def _blob_service(self, connection: str | None) -> BlobServiceClient:
        service = self.connections.account(connection).blob_service()
        self._services.append(service)
        return service

    async def _start_timer(self, function: TriggerFunction) -> None:
        trigger = function.trigger
        schedule = parse_schedule(resolve_settings(str(trigger.get("schedule"))))
        use_monitor = trigger.get("useMonitor")
        # As TimerSchedule.Create: the attribute's UseMonitor (default true) is switched off for
        # schedules firing more than once a minute, whether or not the app set it.
        monitor_on = (use_monitor is None or _truthy(use_monitor)) and schedule.monitor_by_default(_now())
        service = self._blob_service(None)  # AzureWebJobsStorage keeps the host's state
        timer_name = f"Host.Functions.{function.name}"
        monitor = ScheduleMonitor(service, self.host_id, timer_name) if monitor_on else None

        async def fire(request: Any) -> Any:
            return await self.invoke(function, request, {"TimerTrigger": _now().isoformat()})

        listener = TimerListener(function.name, schedule, fire, monitor=monitor,
                                 run_on_startup=_truthy(trigger.get("runOnStartup", False)))
        self.listeners[function.name] = listener
        lease, recovery = _singleton_settings(self.files.host_json)
        singleton = SingletonListener(service, f"{self.host_id}/{timer_name}.Listener", listener.start,
                                      listener.stop, lease=lease,
                                      recovery_interval=self.options.lock_recovery_interval or recovery)
        self.singletons[function.name] = singleton
        await singleton.begin()

    # ------------------------------------------------------------------ queues
    async def _start_queue(self, function: TriggerFunction) -> None:
        trigger = function.trigger
        queue_name = resolve_settings(str(trigger.get("queueName") or "")).lower()
        service = self.connections.account(trigger.connection).queue_service()
        self._services.append(service)
        kind = parameter_kind(function.function, trigger.name, trigger.data_type)

        async def run(message: Any, body: str, data: Mapping[str, Any]) -> Any:
            value = body if kind == "str" else body.encode("utf-8") if kind == "bytes" else message
            return await self.invoke(function, value, data)

        options = QueueOptions.from_host_json(self.files.host_json)
        listener = QueueListener(function.name, service.get_queue_client(queue_name),
                                 service.get_queue_client(f"{queue_name}-poison"), run, options)
        self.listeners[function.name] = listener
        await listener.start()

    # ------------------------------------------------------------------ blobs
    async def _start_blob(self, function: TriggerFunction) -> None:
        from ._blob_trigger import POISON_QUEUE, BlobListener

        trigger = function.trigger
        path = resolve_settings(str(trigger.get("path") or ""))
        service = self._blob_service(trigger.connection)
        receipts = self._blob_service(None)
        kind = parameter_kind(function.function, trigger.name, trigger.data_type)

        async def run(stream: Any, data: Mapping[str, Any]) -> Any:
            value = stream
            if kind in ("str", "bytes"):
                raw = stream.read()
                value = raw.decode("utf-8") if kind == "str" else raw
            return await self.invoke(function, value, data)

        queues = self.connections.account(None).queue_service()
        self._services.append(queues)
        listener = BlobListener(function.name, path, service, receipts, queues.get_queue_client(POISON_QUEUE),
                                self.host_id, run,
                                poll_interval=self.options.blob_polling_interval,
                                max_attempts=QueueOptions.from_host_json(self.files.host_json).max_dequeue_count)
        self.listeners[function.name] = listener
        await listener.start()


def _singleton_settings(host_json: Mapping[str, Any]) -> tuple[timedelta, timedelta]:
    """host.json ``singleton``: ``listenerLockPeriod`` (15-60 s, default 60 s) and
    ``listenerLockRecoveryPollingInterval`` (default 1 minute), as the WebJobs host reads them."""
    section = ci_value(host_json, "singleton") or {}
    if not isinstance(section, Mapping):
        raise ConfigurationError("host.json: singleton must be a JSON object")
    raw_lease = ci_value(section, "listenerLockPeriod")
    lease = timedelta(seconds=60) if raw_lease is None else duration_setting(raw_lease, "singleton.listenerLockPeriod")
    if not timedelta(seconds=15) <= lease <= timedelta(seconds=60):
        raise ConfigurationError("host.json: singleton.listenerLockPeriod must be between 00:00:15 and 00:01:00")
    raw = ci_value(section, "listenerLockRecoveryPollingInterval")
    recovery = timedelta(minutes=1) if raw is None else duration_setting(
        raw, "singleton.listenerLockRecoveryPollingInterval")
    return lease, recovery


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")
