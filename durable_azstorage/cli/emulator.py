"""``azurite``: the local storage emulator, from the npm package pinned in this project.

By default on the standard ports 10000-10002, so ``UseDevelopmentStorage=true`` (what
``func init`` writes to local.settings.json, what Storage Explorer and the docs assume) reaches
it; ``--ports auto`` lets the OS choose (several emulators side by side).
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path

import click

from ..azurite import STANDARD_PORTS, Azurite, azurite_installed, ensure_azurite_installed, ports_in_use
from ..errors import ConfigurationError

__all__ = ["DEFAULT_DATA_DIR", "azurite"]

DEFAULT_DATA_DIR = Path(".durable")


def _ports(text: str) -> tuple[int, int, int]:
    """``standard`` (10000-10002), ``auto`` (OS-chosen) or ``BLOB,QUEUE,TABLE``."""
    lowered = text.strip().lower()
    if lowered == "standard":
        return STANDARD_PORTS
    if lowered == "auto":
        return (0, 0, 0)
    parts = lowered.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) < 65536 for p in parts):
        raise click.BadParameter("use standard, auto or BLOB,QUEUE,TABLE (e.g. 20000,20001,20002)",
                                 param_hint="--ports")
    blob, queue, table = (int(p) for p in parts)
    return blob, queue, table


@click.command()
@click.option("--install-only", is_flag=True, help="Install the pinned Azurite (npm ci) and exit.")
@click.option("--check", is_flag=True, help="With --install-only: exit 1 if not installed yet; install nothing.")
@click.option(
    "--location",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR / "azurite",
    show_default=True,
    help="Folder for persistent data.",
)
@click.option("--in-memory", is_flag=True, help="Keep data in memory only (lost on exit).")
@click.option("--ports", "ports_text", default="standard", show_default=True,
              help="standard (10000-10002, UseDevelopmentStorage=true), auto (free ports), or BLOB,QUEUE,TABLE.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
def azurite(install_only: bool, check: bool, location: Path, in_memory: bool, ports_text: str, host: str) -> None:
    """Start the local storage emulator and print the AzureWebJobsStorage line to export."""
    ports = _ports(ports_text)
    if install_only and check:
        sys.exit(0 if azurite_installed() else 1)
    binary = ensure_azurite_installed()
    if install_only:
        click.echo(f"Azurite ready: {binary}")
        return
    taken = ports_in_use(host, tuple(p for p in ports if p))
    if taken:
        standard = ports == STANDARD_PORTS
        hint = ("another Azurite (or the storage emulator) is probably running: use it as it is "
                "(export AzureWebJobsStorage=UseDevelopmentStorage=true), stop it, or pass --ports auto"
                if standard else "pass other --ports, or --ports auto")
        raise ConfigurationError(f"port{'s' if len(taken) > 1 else ''} {', '.join(map(str, taken))} "
                                 f"on {host} {'are' if len(taken) > 1 else 'is'} in use; {hint}")
    emulator = Azurite(location=None if in_memory else location, ports=ports, host=host, binary=binary)
    endpoints = emulator.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: stop.set())
    click.echo(f"Azurite is running ({'in memory' if in_memory else f'data in {location}'}): "
               f"blob {endpoints.blob}, queue {endpoints.queue}, table {endpoints.table}")
    click.echo("Use it from other terminals with:")
    if ports == STANDARD_PORTS and host == "127.0.0.1":
        click.echo("  export AzureWebJobsStorage=UseDevelopmentStorage=true")
    else:
        click.echo(f"  export AzureWebJobsStorage={shlex.quote(endpoints.connection_string)}")
    click.echo("Press Ctrl-C to stop.", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
