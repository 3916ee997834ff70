"""``durable-azstorage``: the command line (click, for its well-kept parsing, help and errors)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from azure.core.exceptions import AzureError

from . import __version__
from .azurite import Azurite, ensure_azurite_installed
from .connection import StorageAccount
from .errors import DurableAzStorageError

__all__ = ["main"]

DEFAULT_DATA_DIR = Path(".durable")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="durable-azstorage")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Durable Task / Durable Functions workflows on Azure Storage (DurableTask.AzureStorage layout)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if verbose < 2:
        logging.getLogger("azure").setLevel(logging.WARNING)


@cli.command()
@click.option("--install-only", is_flag=True, help="Install the pinned Azurite (npm ci) and exit.")
@click.option(
    "--location",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR / "azurite",
    show_default=True,
    help="Folder for persistent data.",
)
@click.option("--in-memory", is_flag=True, help="Keep data in memory only (lost on exit).")
def azurite(install_only: bool, location: Path, in_memory: bool) -> None:
    """Start the local storage emulator on free ports and print its connection string."""
    binary = ensure_azurite_installed()
    if install_only:
        click.echo(f"Azurite ready: {binary}")
        return
    emulator = Azurite(location=None if in_memory else location)
    endpoints = emulator.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"Azurite is running ({'in memory' if in_memory else f'data in {location}'}).")
    click.echo("Connection string (export it as AzureWebJobsStorage):")
    click.echo(endpoints.connection_string)
    click.echo("Press Ctrl-C to stop.")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


def _load_app(spec: str) -> Callable[[Any], None]:
    """``module:function``: the function receives the :class:`Worker` and registers functions."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter("expected MODULE:FUNCTION, e.g. myapp.workflows:register", param_hint="--app")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="--app") from exc
    register = getattr(module, attr, None)
    if not callable(register):
        raise click.BadParameter(f"{module_name!r} has no callable {attr!r}", param_hint="--app")
    return register  # type: ignore[no-any-return]


def _account(connection: str | None) -> StorageAccount:
    if connection:
        return StorageAccount.from_connection_string(connection)
    return StorageAccount.from_settings()


@cli.command()
@click.option("--app", "app_spec", required=True, help="MODULE:FUNCTION that registers orchestrators and activities.")
@click.option(
    "--connection", envvar="AzureWebJobsStorage", help="Storage connection string (default: AzureWebJobsStorage)."
)
@click.option("--task-hub-name", envvar="DURABLE_TASK_HUB", default="DefaultTaskHub", show_default=True)
@click.option("--partition-count", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--worker-id", help="Identity in the Partitions table (default: host:pid).")
@click.option("--max-polling-interval", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("--visibility-timeout", type=float, default=300.0, show_default=True, help="Seconds, both queues.")
@click.option(
    "--lease-interval",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds a partition lease lasts without renewal (failover time after a crash).",
)
@click.option("--drain-timeout", type=float, default=60.0, show_default=True,
              help="Seconds a stop waits for running episodes before releasing partitions.")
@click.option("--health-port", type=click.IntRange(0, 65535), envvar="DURABLE_AZSTORAGE_HEALTH_PORT",
              help="Serve /healthz and /readyz on this port (default: off).")
@click.option("--health-host", envvar="DURABLE_AZSTORAGE_HEALTH_HOST", default="127.0.0.1", show_default=True,
              help="Interface for the probes (0.0.0.0 in a container).")
def worker(
    app_spec: str,
    connection: str | None,
    task_hub_name: str,
    partition_count: int,
    worker_id: str | None,
    max_polling_interval: float,
    visibility_timeout: float,
    lease_interval: float,
    drain_timeout: float,
    health_port: int | None,
    health_host: str,
) -> None:
    """Run a worker for the functions an app module registers, until SIGINT/SIGTERM."""
    from datetime import timedelta

    from .settings import WorkerSettings
    from .worker import Worker

    register = _load_app(app_spec)
    overrides: dict[str, Any] = {
        "task_hub_name": task_hub_name,
        "partition_count": partition_count,
        "max_queue_polling_interval": timedelta(seconds=max_polling_interval),
        "control_queue_visibility_timeout": timedelta(seconds=visibility_timeout),
        "work_item_queue_visibility_timeout": timedelta(seconds=visibility_timeout),
        "lease_interval": timedelta(seconds=lease_interval),
        # DTAS claims for a fixed minute; shorter test leases shorten the claim too.
        "lease_claim_duration": timedelta(seconds=60.0 if lease_interval >= 30 else lease_interval),
        "lease_acquire_interval": timedelta(seconds=min(10.0, lease_interval / 3)),
        "drain_timeout": timedelta(seconds=drain_timeout),
    }
    if worker_id:
        overrides["worker_id"] = worker_id
    host = Worker(_account(connection), WorkerSettings(**overrides))
    register(host)
    asyncio.run(_serve_worker(host, health_host, health_port))


async def _serve_worker(host: Any, health_host: str, health_port: int | None) -> None:
    from .worker.serve import serve_worker, stop_on_signals

    def started(worker: Any, probes: Any) -> None:
        where = f", probes on {health_host}:{probes.port}" if probes else ""
        click.echo(f"worker {worker.settings.worker_id} running on task hub {worker.settings.task_hub_name}{where}",
                   err=True)

    stop = asyncio.Event()
    stop_on_signals(stop)
    await serve_worker(host, stop, health_host=health_host, health_port=health_port, on_started=started,
                       on_stopping=lambda: click.echo("stopping: releasing partitions", err=True))


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the embedded Azurite keeps its data.",
)
@click.option("--connection", envvar="AzureWebJobsStorage", help="Use this storage account instead of Azurite.")
@click.option("--task-hub-name", default="DemoHub", show_default=True)
def demo(data_dir: Path, connection: str | None, task_hub_name: str) -> None:
    """Run a worker and sample orchestrations on an embedded Azurite, print the results, stop."""
    from .demo import run_demo

    sys.exit(run_demo(data_dir=data_dir, connection_string=connection, task_hub_name=task_hub_name))


from ._cli_manage import register as _register_management  # noqa: E402 - needs ``cli``

_register_management(cli)

from ._cli_run import register as _register_run  # noqa: E402 - needs ``cli``

_register_run(cli)

from .sidecar.cli import register as _register_sidecar  # noqa: E402 - needs ``cli``

_register_sidecar(cli)

from ._cli_dashboard import register as _register_dashboard  # noqa: E402 - needs ``cli``

_register_dashboard(cli)


def main() -> None:
    """Console entry point: turn our typed errors into a one-line message and exit code 2."""
    try:
        cli(standalone_mode=True)
    except DurableAzStorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except AzureError as exc:  # storage unreachable or refusing us: configuration, not a crash
        click.echo(f"error: storage request failed: {str(exc.message or exc).splitlines()[0]}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
