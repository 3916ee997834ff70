"""``durable-azstorage``: the command line (click, for its well-kept parsing, help and errors).

One module per verb family: :mod:`.instances`, :mod:`.entities`, :mod:`.poison`, :mod:`.hosts`
(worker, run, serve), :mod:`.sidecar`, :mod:`.emulator` (azurite) and :mod:`.demo`; what they share is in
:mod:`._common` and :mod:`._progress`.
"""

from __future__ import annotations

import logging
import sys

import click
from azure.core.exceptions import AzureError

from .. import __version__
from ..errors import DurableAzStorageError
from . import entities, hosts, instances, operations
from .demo import demo
from .emulator import azurite
from .poison import poison
from .sidecar import sidecar

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="durable-azstorage")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Durable Task / Durable Functions workflows on Azure Storage (DurableTask.AzureStorage layout)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if verbose < 2:
        logging.getLogger("azure").setLevel(logging.WARNING)


for _command in (azurite, demo, hosts.worker, hosts.run, sidecar, poison):
    cli.add_command(_command)
for _family in (instances.verbs, hosts.verbs, entities.verbs, operations.verbs):
    _family.register(cli)


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
