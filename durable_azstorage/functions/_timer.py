"""The ``timerTrigger`` listener: schedule, ``runOnStartup``, ``useMonitor`` and past-due firing.

Behaviour follows the WebJobs timer extension (``TimerListener`` / ``ScheduleMonitor`` /
``StorageScheduleMonitor``):

* with ``useMonitor`` the status lives in ``azure-webjobs-hosts/timers/{hostId}/Host.Functions.
  {name}/status``; at start the listener reads it and, when the recorded ``Next`` has passed
  (the host was down), fires **once** at start-up with ``past_due`` true — not once per missed
  occurrence; a changed schedule is detected and re-recorded instead of firing;
* otherwise ``runOnStartup`` fires once at start-up;
* after each firing the status becomes ``Last = Next-that-was-due`` (or the firing time for
  start-up and past-due firings), ``Next = schedule after Last``; a failing function is logged and
  the schedule goes on, as on the host (no retry);
* the listener itself is a singleton across hosts of the app (see :mod:`._singleton`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.timer import TimerRequest
from azure.storage.blob.aio import BlobServiceClient

from ._singleton import HOSTS_CONTAINER
from ._timer_schedule import MIN_STATUS, Schedule, ScheduleStatus

__all__ = ["ScheduleMonitor", "TimerListener", "check_past_due"]

log = logging.getLogger(__name__)

Invoke = Callable[[TimerRequest], Awaitable[object]]


class ScheduleMonitor:
    """Reads and writes one timer's status blob (``StorageScheduleMonitor``)."""

    def __init__(self, service: BlobServiceClient, host_id: str, timer_name: str) -> None:
        self.path = f"timers/{host_id}/{timer_name}/status"
        self._container = service.get_container_client(HOSTS_CONTAINER)

    async def read(self) -> ScheduleStatus | None:
        try:
            downloader = await self._container.get_blob_client(self.path).download_blob()
            text = await downloader.readall()
        except ResourceNotFoundError:
            return None
        try:
            return ScheduleStatus.from_json(text)
        except ValueError:
            log.warning("functions.timer_status_unreadable", extra={"blob": self.path})
            return None

    async def write(self, status: ScheduleStatus) -> None:
        data = status.to_json().encode("utf-8")
        blob = self._container.get_blob_client(self.path)
        try:
            try:
                await blob.upload_blob(data, overwrite=True)
            except ResourceNotFoundError:
                with contextlib.suppress(ResourceExistsError):
                    await self._container.create_container()
                await blob.upload_blob(data, overwrite=True)
        except AzureError as exc:  # the host logs and carries on
            log.error("functions.timer_status_write_failed", extra={"blob": self.path, "error": str(exc)})


def check_past_due(
    schedule: Schedule, now: datetime, status: ScheduleStatus | None
) -> tuple[ScheduleStatus, bool, timedelta]:
    """(status to keep, whether it must be written, how long the recorded ``Next`` is overdue)."""
    if status is None:
        fresh = ScheduleStatus(MIN_STATUS, schedule.next_after(now), now)
        return fresh, True, timedelta(0)
    write = False
    if status.last != MIN_STATUS:
        expected, updated = schedule.next_after(status.last), status.last
    elif status.last_updated != MIN_STATUS:
        expected, updated = schedule.next_after(status.last_updated), status.last_updated
    else:
        expected, updated = schedule.next_after(now), now
    if status.next != expected:  # the schedule changed since the status was written
        if now > expected:
            expected, updated = schedule.next_after(now), now
        status = ScheduleStatus(MIN_STATUS, expected, updated)
        write = True
    overdue = now - status.next if now > status.next else timedelta(0)
    return status, write, overdue


class TimerListener:
    """Fires one timer function on its schedule until stopped."""

    def __init__(
        self,
        name: str,
        schedule: Schedule,
        invoke: Invoke,
        *,
        monitor: ScheduleMonitor | None,
        run_on_startup: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.name = name
        self.schedule = schedule
        self._invoke = invoke
        self._monitor = monitor
        self._run_on_startup = run_on_startup
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._firing: asyncio.Task[None] | None = None
        self.status: ScheduleStatus | None = None

    async def start(self) -> None:
        now = self._clock().astimezone(self.schedule.zone)
        past_due, original = False, None
        if self._monitor is not None:
            recorded = await self._monitor.read()
            status, write, overdue = check_past_due(self.schedule, now, recorded)
            if write:
                await self._monitor.write(status)
            past_due, original = overdue > timedelta(0), status.next
            self.status = status if recorded is not None else None
        if self.status is None:
            self.status = ScheduleStatus(MIN_STATUS, self.schedule.next_after(now), MIN_STATUS)
        startup = "past_due" if past_due else ("run_on_startup" if self._run_on_startup else None)
        log.info("functions.timer_started", extra={
            "function_name": self.name, "schedule": self.schedule.expression, "timezone": str(self.schedule.zone),
            "next": [t.isoformat() for t in self.schedule.next_occurrences(5, now)], "startup": startup,
            "original_schedule": original.isoformat() if past_due and original else None})
        self._task = asyncio.create_task(self._run(startup), name=f"timer {self.name}")

    async def stop(self) -> None:
        """Stop scheduling; a firing in progress finishes first (as the host's invocation lock)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._firing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._firing
            self._firing = None

    async def _run(self, startup: str | None) -> None:
        if startup is not None:
            await self._shielded(past_due=startup == "past_due", on_startup=startup == "run_on_startup")
        while True:
            assert self.status is not None
            delay = (self.status.next - self._clock()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._shielded(past_due=False, on_startup=False)

    async def _shielded(self, *, past_due: bool, on_startup: bool) -> None:
        """Stopping the schedule never cuts a firing (or its status update) in half."""
        self._firing = asyncio.create_task(self._fire(self._clock(), past_due=past_due, on_startup=on_startup))
        await asyncio.shield(self._firing)
        self._firing = None

    async def _fire(self, when: datetime, *, past_due: bool, on_startup: bool) -> None:
        assert self.status is not None
        info = self.status.to_timer_info() if self._monitor is not None else {}
        request = TimerRequest(past_due=past_due, schedule_status=info, schedule={"AdjustForDST": True})
        try:
            await self._invoke(request)
        except Exception:  # user code: logged, the schedule goes on (as the host does)
            log.exception("functions.timer_function_failed", extra={"function_name": self.name})
        when = when.astimezone(self.schedule.zone)
        if not past_due and not on_startup and self.status.next > when:
            when = self.status.next  # woke a little early: this firing stands for the scheduled one
        self.status = ScheduleStatus(when, self.schedule.next_after(when), when)
        if self._monitor is not None:
            await self._monitor.write(self.status)
