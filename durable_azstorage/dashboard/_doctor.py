"""The dashboard's health panel gets ``doctor``'s findings (docs/operations.md).

A quick, read-only doctor scan (live instances and entities only) runs in the background every
``interval`` seconds while the dashboard is served; the overview shows the latest findings
without waiting for a scan. Findings the overview already reports itself (partition owners,
quarantined messages) are left out so nothing is listed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from azure.core.exceptions import AzureError

from ..aio import TaskHubClient
from ..errors import DurableAzStorageError
from ..operations import DoctorOptions, DoctorReport, diagnose_hub
from ._overview import HealthFinding

__all__ = ["DoctorHealthCheck"]

log = logging.getLogger(__name__)

_SHOWN_BY_OVERVIEW = frozenset({"partitions.unclaimed", "partitions.no-live-owner", "poison.quarantined"})


class DoctorHealthCheck:
    """A dashboard ``HealthCheck`` fed by periodic ``doctor`` scans of one hub."""

    def __init__(self, client: TaskHubClient, *, interval: float = 300.0) -> None:
        self._client = client
        self.interval = interval
        self.report: DoctorReport | None = None
        self.error: str | None = None
        self._options = DoctorOptions(full_scan=False, horizon=timedelta(minutes=15), max_history_reads=200)

    async def __call__(self, client: TaskHubClient) -> list[HealthFinding]:
        if self.error is not None:
            return [HealthFinding("info", "doctor could not check the hub", self.error)]
        if self.report is None:
            return [HealthFinding("info", "doctor: first check running", "Findings appear here in a moment.")]
        return findings_for_panel(self.report)

    async def scan(self) -> DoctorReport:
        # The dashboard client's own storage objects: no clients to open (or leak when the server
        # stops mid-scan), and the scan's transactions show in the dashboard's counter.
        self.report = await diagnose_hub(self._client._hub, options=self._options)
        self.error = None
        return self.report

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except (AzureError, DurableAzStorageError, OSError) as exc:
                self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("dashboard.doctor_failed", exc_info=True)
            except Exception as exc:  # a bug in a check must not take the dashboard down
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("dashboard.doctor_failed")
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run(), name="dashboard-doctor")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def findings_for_panel(report: DoctorReport) -> list[HealthFinding]:
    """One panel line per finding: severity, title with count, examples, advice and code."""
    lines = []
    for f in report.findings:
        if not f.count or f.code in _SHOWN_BY_OVERVIEW:
            continue
        more = ", ..." if f.count > len(f.examples) else ""
        detail = f"{', '.join(f.examples)}{more}. {f.advice} [{f.code}]"
        lines.append(HealthFinding(f.severity.value, f"{f.title}: {f.count}", detail))
    if not lines:
        lines.append(HealthFinding("ok", "doctor: no problems", f"checked {report.scanned_at:%H:%M:%S} UTC"))
    return lines
