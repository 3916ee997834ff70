"""``durable-azstorage``: the command line (click, for its well-kept parsing, help and errors)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from . import __version__
from .azurite import Azurite, ensure_azurite_installed
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


def main() -> None:
    """Console entry point: turn our typed errors into a one-line message and exit code 2."""
    try:
        cli(standalone_mode=True)
    except DurableAzStorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
