"""``azurite``: the local storage emulator, from the npm package pinned in this project."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from ..azurite import Azurite, ensure_azurite_installed

__all__ = ["DEFAULT_DATA_DIR", "azurite"]

DEFAULT_DATA_DIR = Path(".durable")


@click.command()
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
