"""``doctor``: find (and, asked to, repair) what makes a task hub misbehave.

Three steps, each its own module: :mod:`.doctor_scan` reads the hub (read-only),
:mod:`.doctor_rules` turns what it read into findings (pure), :mod:`.doctor_repair` applies the
safe repairs (conditional writes). :func:`diagnose` runs them; :func:`health_findings` is the
JSON-ready form a dashboard or a script shows.
"""

from __future__ import annotations

import logging
from typing import Any

from ..connection import StorageAccount
from ..storage import TaskHubStorage
from .doctor_repair import apply_repairs
from .doctor_rules import analyse
from .doctor_scan import LIMITS, Progress, scan_hub
from .findings import DoctorReport
from .hub_snapshot import DoctorOptions

__all__ = ["QUICK_LIMIT", "diagnose", "diagnose_hub", "health_findings"]

QUICK_LIMIT = "quick scan: live instances and entities only; history without rows and orphaned blobs not looked for"

log = logging.getLogger(__name__)


def _none(_: str) -> None:
    return None


async def diagnose(
    account: StorageAccount,
    task_hub: str,
    *,
    repair: bool = False,
    options: DoctorOptions | None = None,
    progress: Progress = _none,
) -> DoctorReport:
    """Scan ``task_hub``; with ``repair``, apply the safe repairs and scan again to confirm.

    The returned report's findings are those of the last scan (after repairs), its ``repairs``
    list says what each repair did to each target.
    """
    hub = await TaskHubStorage.discover(account, task_hub)
    async with hub:
        return await diagnose_hub(hub, repair=repair, options=options, progress=progress)


async def diagnose_hub(
    hub: TaskHubStorage,
    *,
    repair: bool = False,
    options: DoctorOptions | None = None,
    progress: Progress = _none,
) -> DoctorReport:
    """:func:`diagnose` on a hub's open storage objects (e.g. a dashboard's own, so it opens none)."""
    opts = options or DoctorOptions()
    snapshot = await scan_hub(hub, progress=progress, options=opts)
    findings = analyse(snapshot, opts)
    repairs = []
    if repair:
        progress("repairing")
        repairs = await apply_repairs(hub, snapshot, findings)
        if any(r.outcome.value == "fixed" for r in repairs):
            progress("re-scanning after repairs")
            snapshot = await scan_hub(hub, progress=progress, options=opts)
            findings = analyse(snapshot, opts)
    report = DoctorReport(
        task_hub=hub.names.task_hub,
        scanned_at=snapshot.now,
        partition_count=snapshot.partition_count,
        scanned={
            "instances": len(snapshot.instances),
            "histories": len(snapshot.histories),
            "queues": sum(1 for q in snapshot.queues.values() if q.exists),
            "peekedMessages": sum(len(q.peeked) for q in snapshot.queues.values()),
            "leases": len(snapshot.leases) + len(snapshot.blob_leases),
            "quarantined": len(snapshot.poison),
            "blobs": len(snapshot.blobs),
        },
        findings=findings,
        repairs=repairs,
        limits=[*LIMITS, *([] if opts.full_scan else [QUICK_LIMIT]), *snapshot.notes],
    )
    log.info("doctor.finished", extra={"task_hub": hub.names.task_hub, "problems": len(report.problems)})
    return report


async def health_findings(
    account: StorageAccount, task_hub: str, *, options: DoctorOptions | None = None
) -> dict[str, Any]:
    """Read-only findings as JSON-ready data (``DoctorReport.to_dict``), e.g. for a health panel."""
    return (await diagnose(account, task_hub, options=options)).to_dict()
