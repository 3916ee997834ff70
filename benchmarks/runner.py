"""``python -m benchmarks run``: start the stores, run every engine in its own process, report.

Flow: collect the environment → start Azurite (or use ``--connection-string``) → start
PostgreSQL when the DBOS peer is asked for → our engine's child process (which first measures
the storage ceiling) → each peer's child process → derive ratios and targets → print the
tables → write the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .environment import collect_environment, load_average
from .report import OURS, derive, print_report
from .sizes import PRESETS, WORKLOADS, Sizes

__all__ = ["PEERS", "TARGETS", "main", "run"]

PEERS = (
    "durable_azstorage-sidecar",
    "durabletask-inmem",
    "dbos-postgres",
    "durable_azstorage-otel",
    "durable_azstorage-functions",
)
SIDECAR = "durable_azstorage-sidecar"  # our engine through the gRPC sidecar: needs the same Azurite
OTEL = "durable_azstorage-otel"  # our engine with OpenTelemetry traces and metrics on (in-memory export)
FUNCTIONS = "durable_azstorage-functions"  # our engine running the same work as a Durable Functions 1.x app
# Opt-in (not in the default --peers): the same app replaying its whole history every episode.
FUNCTIONS_FULL = "durable_azstorage-functions-fullreplay"
OPT_IN_PEERS = (FUNCTIONS_FULL,)
# Issue 16's targets (issue 8's ceiling and replay ones kept); printed next to the measurements,
# never asserted. Override with --target.
TARGETS = {
    "hello_transactions": 32.0,
    "ceiling_fraction": 0.7,
    "latency_p50_ms": 50.0,
    "replay_growth": 1.5,
    "cpu_over_dbos": 1.2,
}


@contextlib.contextmanager
def _azurite(connection_string: str | None) -> Iterator[tuple[str, int | None]]:
    if connection_string:
        yield connection_string, None
        return
    from durable_azstorage.azurite import Azurite

    with Azurite() as azurite:
        proc = getattr(azurite, "_proc", None)
        yield azurite.connection_string, (proc.pid if proc is not None else None)


def _child(engine: str, workloads: list[str], sizes: Sizes, extra: list[str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        out = Path(folder) / "result.json"
        argv = [
            sys.executable,
            "-m",
            "benchmarks.child",
            "--engine",
            engine,
            "--workloads",
            ",".join(workloads),
            "--sizes",
            json.dumps(sizes.as_dict()),
            "--out",
            str(out),
            *extra,
        ]
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"engine": engine, "status": "error", "reason": f"timed out after {timeout:.0f} s"}
        if not out.exists():
            tail = (done.stderr or "").strip().splitlines()[-5:]
            return {"engine": engine, "status": "error", "reason": f"exit {done.returncode}: {' | '.join(tail)}"}
        data: dict[str, Any] = json.loads(out.read_text())
    data["seconds"] = round(time.perf_counter() - started, 1)
    if "error" in data:
        data["status"], data["reason"] = "error", data["error"]
    else:
        data["status"] = "ok"
    return data


def _dbos_missing() -> str | None:
    try:
        import dbos  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc.name}); pip install -e '.[bench]'"
    return None


def run(
    *,
    sizes: Sizes,
    workloads: list[str],
    peers: list[str],
    connection_string: str | None = None,
    targets: dict[str, float] | None = None,
    size_name: str = "custom",
) -> dict[str, Any]:
    """Runs the suite and returns the report (also what ``--json`` writes)."""
    report: dict[str, Any] = {
        "environment": collect_environment(),
        "size": size_name,
        "sizes": sizes.as_dict(),
        "workloads": workloads,
        "peers": peers,
        "target_thresholds": targets or dict(TARGETS),
        "engines": {},
    }
    budget = sizes.timeout_seconds * (len(workloads) + 1) + 120
    with _azurite(connection_string) as (azurite_cs, azurite_pid):
        extra = ["--connection-string", azurite_cs, "--ceiling"]
        if azurite_pid is not None:
            extra += ["--server-pid", str(azurite_pid)]
        ours = _child(OURS, workloads, sizes, extra, budget)
        report["ceiling"] = ours.pop("ceiling", None)
        report["engines"][OURS] = ours
        for variant in (SIDECAR, OTEL, FUNCTIONS, FUNCTIONS_FULL):
            if variant in peers:
                no_ceiling = [arg for arg in extra if arg != "--ceiling"]
                report["engines"][variant] = _child(variant, workloads, sizes, no_ceiling, budget)
    for peer in peers:
        if peer == "durabletask-inmem":
            report["engines"][peer] = _child(peer, workloads, sizes, [], budget)
        elif peer == "dbos-postgres":
            report["engines"][peer] = _run_dbos(workloads, sizes, budget)
    report["environment"]["machine"]["load_average_at_end"] = load_average()
    derive(report)
    return report


def _run_dbos(workloads: list[str], sizes: Sizes, budget: float) -> dict[str, Any]:
    missing = _dbos_missing()
    if missing:
        return {"engine": "dbos-postgres", "status": "n/a", "reason": f"dbos {missing}"}
    from .postgres import LocalPostgres, PostgresUnavailable

    try:
        with LocalPostgres() as pg:
            extra = ["--database-url", pg.url, "--server-pid", str(pg.pid)]
            return _child("dbos-postgres", workloads, sizes, extra, budget)
    except PostgresUnavailable as exc:
        return {"engine": "dbos-postgres", "status": "n/a", "reason": f"PostgreSQL: {exc}"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark durable_azstorage on Azurite against the durabletask in-memory backend and DBOS.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("run", help="run the suite, print tables, optionally write JSON")
    cmd.add_argument("--size", choices=sorted(PRESETS), default="default")
    cmd.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}"
    )
    cmd.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated subset of {','.join(PEERS)} (opt-in: {','.join(OPT_IN_PEERS)}), or ''",
    )
    cmd.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override one size, e.g. hello_instances=50"
    )
    cmd.add_argument(
        "--target", action="append", default=[], metavar="NAME=VALUE", help=f"report threshold; defaults {TARGETS}"
    )
    cmd.add_argument("--connection-string", default=None, help="use this storage account instead of a private Azurite")
    cmd.add_argument("--json", dest="json_out", default=None, help="write the full results here")
    md = sub.add_parser("markdown", help="print the tables of a --json result as Markdown")
    md.add_argument("path")
    return parser.parse_args(argv)


def _split(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in items if x not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    if args.command == "markdown":
        from .markdown import main as markdown

        markdown(args.path)
        return {}
    sizes = PRESETS[args.size].with_overrides(args.set)
    targets = dict(TARGETS)
    for pair in args.target:
        name, _, value = pair.partition("=")
        if name not in TARGETS:
            raise SystemExit(f"--target NAME must be one of {', '.join(TARGETS)}")
        targets[name] = float(value)
    report = run(
        sizes=sizes,
        workloads=_split(args.workloads, WORKLOADS, "workloads"),
        peers=_split(args.peers, PEERS + OPT_IN_PEERS, "peers"),
        connection_string=args.connection_string,
        targets=targets,
        size_name=args.size,
    )
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str))
    return report
