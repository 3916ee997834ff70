"""Operations verbs: ``doctor`` (and, as they land, ``replay-check`` and ``export-history``)."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from ..operations import DoctorOptions, DoctorReport, diagnose
from ..operations.findings import Severity
from ..settings import WorkerSettings
from ._common import Verbs, emit, resolve_account, run_async
from ._progress import progress_line

__all__ = ["verbs"]

verbs = Verbs()

_MARK = {Severity.ERROR: "ERROR  ", Severity.WARNING: "WARNING", Severity.INFO: "info   "}


@verbs.command("doctor")
@click.option("--repair", is_flag=True,
              help="Apply the safe repairs (each named, eTag-conditional); default: read only.")
@click.option("--horizon", type=click.IntRange(min=0), default=15, show_default=True,
              help="Minutes an instance may sit Pending (or a row lag its history) before it counts.")
@click.option("--poison-threshold", type=click.IntRange(min=1),
              default=WorkerSettings.poison_dequeue_threshold, show_default=True,
              help="Dequeue count at which workers quarantine a message.")
@click.option("--orphan-blob-days", type=click.IntRange(min=0), default=7, show_default=True,
              help="Age after which --repair deletes large-message blobs no instance refers to.")
def doctor(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    repair: bool, horizon: int, poison_threshold: int, orphan_blob_days: int,
) -> None:
    """Check a task hub for stuck instances, orphaned partitions, poison messages and more.

    Exit code 0 when healthy, 1 when problems remain (after repairs, with --repair), 2 on error.
    """
    options = DoctorOptions(
        horizon=timedelta(minutes=horizon), poison_threshold=poison_threshold,
        orphan_blob_age=timedelta(days=orphan_blob_days),
    )
    account = resolve_account(connection, setting)
    with progress_line(f"checking {task_hub_name}", enabled=not as_json) as line:
        report = run_async(diagnose(account, task_hub_name, repair=repair, options=options, progress=line.update))
    emit(as_json, report.to_dict(), lambda: _print_report(report, repair))
    sys.exit(0 if report.healthy else 1)


def _print_report(report: DoctorReport, repaired: bool) -> None:
    scanned = ", ".join(f"{n} {k}" for k, n in report.scanned.items())
    click.echo(f"Task hub {report.task_hub}: {report.partition_count} partitions; scanned {scanned}.")
    for r in report.repairs:
        click.echo(f"  repair {r.repair} {r.target}: {r.outcome.value}{' - ' + r.detail if r.detail else ''}")
    shown = [f for f in report.findings if f.count]
    for f in shown:
        examples = ", ".join(f.examples) + (", ..." if f.count > len(f.examples) else "")
        click.echo(f"{_MARK[f.severity]} {f.title}: {f.count} ({examples})  [{f.code}]")
        fix = f" Repair: {f.repair}{' (run with --repair)' if not repaired else ''}." if f.repair else ""
        click.echo(f"        {f.advice}{fix}")
    if report.healthy:
        click.echo("Healthy: no problems found." if not shown else "No problems (only information above).")
    for limit in report.limits:
        click.echo(f"note: {limit}")
