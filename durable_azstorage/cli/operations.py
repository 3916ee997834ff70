"""Operations verbs: ``doctor``, ``replay-check`` and ``export-history`` (docs/operations.md)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from ..operations import DoctorOptions, DoctorReport, diagnose
from ..operations.findings import Severity
from ..operations.history_export import export_history
from ..operations.replay_check import (
    DurableTaskReplayer,
    FunctionsReplayer,
    Replayer,
    ReplayVerdict,
    replay_instances,
)
from ..runtimes.base import Registry
from ..settings import WorkerSettings
from ._common import Verbs, emit, load_register_function, parse_statuses, resolve_account, run_async
from ._progress import progress_line

__all__ = ["verbs"]

verbs = Verbs()

_SCANNED = {"peekedMessages": "peeked messages", "leases": "lease rows/blobs", "quarantined": "quarantined messages"}
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
@click.option("--quick", is_flag=True,
              help="Read only live instances and entities (big hubs); skips history-without-row and blob checks.")
def doctor(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    repair: bool, horizon: int, poison_threshold: int, orphan_blob_days: int, quick: bool,
) -> None:
    """Check a task hub for stuck instances, orphaned partitions, poison messages and more.

    Exit code 0 when healthy, 1 when problems remain (after repairs, with --repair), 2 on error.
    """
    options = DoctorOptions(
        horizon=timedelta(minutes=horizon), poison_threshold=poison_threshold,
        orphan_blob_age=timedelta(days=orphan_blob_days), full_scan=not quick,
    )
    account = resolve_account(connection, setting)
    with progress_line(f"checking {task_hub_name}", enabled=not as_json) as line:
        report = run_async(diagnose(account, task_hub_name, repair=repair, options=options, progress=line.update))
    emit(as_json, report.to_dict(), lambda: _print_report(report, repair))
    sys.exit(0 if report.healthy else 1)


def _print_report(report: DoctorReport, repaired: bool) -> None:
    scanned = ", ".join(f"{n} {_SCANNED.get(k, k)}" for k, n in report.scanned.items())
    click.echo(f"Task hub {report.task_hub}: {report.partition_count} partitions; scanned {scanned}.")
    for r in report.repairs:
        click.echo(f"  repair {r.repair} {r.target}: {r.outcome.value}{' - ' + r.detail if r.detail else ''}")
    order = list(Severity)
    shown = sorted((f for f in report.findings if f.count), key=lambda f: order.index(f.severity))
    for f in shown:
        examples = ", ".join(f.examples) + (", ..." if f.count > len(f.examples) else "")
        click.echo(f"{_MARK[f.severity]} {f.title}: {f.count} ({examples})  [{f.code}]")
        fix = f" Repair: {f.repair}{' (run with --repair)' if not repaired else ''}." if f.repair else ""
        click.echo(f"        {f.advice}{fix}")
    if report.healthy:
        click.echo("Healthy: no problems found." if not shown else "No problems (only information above).")
    for limit in report.limits:
        click.echo(f"note: {limit}")


@verbs.command("replay-check")
@click.option("--app", "app_spec", required=True, metavar="APP",
              help="The new code: MODULE:FUNCTION of a durabletask app (as `worker --app`) or a Functions app "
                   "folder (as `run APP`).")
@click.option("--instance", "instance_ids", multiple=True, metavar="ID", help="Only this instance (repeatable).")
@click.option("--status", "statuses", default="Running,Pending,Suspended", show_default=True,
              help="Which instances to replay (comma-separated statuses).")
def replay_check(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    app_spec: str, instance_ids: tuple[str, ...], statuses: str,
) -> None:
    """Replay running instances against new code; exit code 1 if any would break (gate a deploy on it).

    Storage is only read. Per instance: deterministic, or the first divergent action (recorded
    call vs the new code's call, with the source line).
    """
    replayer = _replayer_for(app_spec)
    wanted = parse_statuses(statuses) or []
    account = resolve_account(connection, setting)
    with progress_line("replaying", enabled=not as_json) as line:
        verdicts = run_async(replay_instances(
            account, task_hub_name, replayer, instance_ids=instance_ids, statuses=wanted, progress=line.update
        ))
    emit(as_json, [v.to_dict() for v in verdicts], lambda: _print_verdicts(verdicts))
    sys.exit(0 if all(v.ok for v in verdicts) else 1)


def _replayer_for(app_spec: str) -> Replayer:
    """A folder (or ``function_app.py``) is a Functions app; ``module:function`` a durabletask app."""
    path = Path(app_spec)
    if path.is_dir() or path.suffix == ".py":
        from ..functions import load_app

        if not path.exists():
            raise click.BadParameter(f"{app_spec} does not exist", param_hint="--app")
        index = load_app(path)
        if not index.orchestrators:
            raise click.BadParameter(f"{app_spec}: the app has no orchestrator functions", param_hint="--app")
        return FunctionsReplayer(index.orchestrators)
    registry = Registry()
    load_register_function(app_spec)(registry)
    if not registry.orchestrators:
        raise click.BadParameter(f"{app_spec} registered no orchestrators", param_hint="--app")
    return DurableTaskReplayer(registry)


def _print_verdicts(verdicts: list[ReplayVerdict]) -> None:
    for v in verdicts:
        if v.ok:
            click.echo(f"ok        {v.instance_id}  {v.name or '-'}  {v.verdict} ({v.events} events)")
            continue
        click.echo(f"{v.verdict.upper():<9} {v.instance_id}  {v.name or '-'}")
        if v.recorded or v.new:
            click.echo(f"          recorded: {v.recorded or '-'}")
            click.echo(f"          new code: {v.new or '-'}" + (f"  at {v.source}" if v.source else ""))
        elif v.source:
            click.echo(f"          at {v.source}")
        click.echo(f"          {v.message.splitlines()[0] if v.message else ''}")
    bad = sum(1 for v in verdicts if not v.ok)
    click.echo(f"{len(verdicts)} instance(s) replayed: {len(verdicts) - bad} ok, {bad} would break.")


@verbs.command("export-history")
@click.option("--id", "instance_id", required=True, help="Instance id.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File to write (default: standard output).")
def export_history_cmd(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool, instance_id: str,
    out: Path | None,
) -> None:
    """Write an instance's history as JSON, for `durable_azstorage.testing.replay` in a unit test."""
    document = run_async(export_history(resolve_account(connection, setting), task_hub_name, instance_id))
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    summary = {"instanceId": instance_id, "events": len(document["events"]), "out": str(out)}
    emit(as_json, summary, f"Wrote {len(document['events'])} events of '{instance_id}' to {out}.")
