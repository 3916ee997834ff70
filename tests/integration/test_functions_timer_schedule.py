"""The timer listener on its schedule (not only at start-up), with its status blob on Azurite."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

import pytest

from durable_azstorage.connection import StorageAccount
from durable_azstorage.functions._timer import ScheduleMonitor, TimerListener
from durable_azstorage.functions._timer_schedule import MIN_STATUS, parse_schedule
from tests.helpers import eventually

pytestmark = pytest.mark.integration


async def test_fires_on_each_occurrence_and_records_it(storage_account: StorageAccount) -> None:
    schedule = parse_schedule("* * * * * *", timezone.utc)  # every second; useMonitor set explicitly
    fired: list[Any] = []

    async def invoke(request: Any) -> None:
        fired.append(request)

    async with storage_account.blob_service() as service:
        monitor = ScheduleMonitor(service, "sched-" + uuid.uuid4().hex[:8], "Host.Functions.Every")
        listener = TimerListener("Every", schedule, invoke, monitor=monitor, run_on_startup=False)
        await listener.start()
        try:
            await eventually(lambda: len(fired) >= 3, timeout=10, interval=0.05, message="three firings")
        finally:
            await listener.stop()
        assert not any(r.past_due for r in fired)
        statuses = [r.schedule_status for r in fired]
        assert statuses[0]["Last"] == "0001-01-01T00:00:00+00:00"  # the first firing sees the fresh status
        status = await monitor.read()
        assert status is not None and status == listener.status
        # Last is the firing time (the occurrence itself when the timer woke early), Next the one after.
        assert status.last != MIN_STATUS and status.last == status.last_updated
        assert status.last - status.last.replace(microsecond=0) < timedelta(milliseconds=500)
        assert status.next == schedule.next_after(status.last) == status.last.replace(microsecond=0) + timedelta(
            seconds=1)


async def test_a_failing_timer_function_keeps_its_schedule(storage_account: StorageAccount) -> None:
    calls: list[bool] = []

    async def invoke(request: Any) -> None:
        calls.append(request.past_due)
        raise RuntimeError("user code failed")

    listener = TimerListener("Failing", parse_schedule("* * * * * *", timezone.utc), invoke, monitor=None,
                             run_on_startup=True)
    await listener.start()
    try:
        await eventually(lambda: len(calls) >= 3, timeout=10, interval=0.05, message="firings after failures")
    finally:
        await listener.stop()
    assert calls[:3] == [False, False, False]
