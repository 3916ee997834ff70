"""``durable-azstorage``: the command line (click, for its well-kept parsing, help and errors).

One module per verb family: :mod:`.instances`, :mod:`.entities`, :mod:`.poison`, :mod:`.hosts`
(worker, run, serve), :mod:`.sidecar`, :mod:`.emulator` (azurite) and :mod:`.demo`; what they share is in
:mod:`._common` and :mod:`._progress`.
"""

from __future__ import annotations

import sys

import click
from azure.core.exceptions import AzureError

from .. import __version__, telemetry
from ..errors import DurableAzStorageError
from . import entities, hosts, instances, operations
from ._logging import configure_logging
from ._startup import output
from .demo import demo
from .emulator import azurite
from .poison import poison
from .sidecar import sidecar

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="durable-azstorage")
@click.option("-v", "--verbose", count=True, help="More log output with each event's fields (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only results and errors: no start-up lines, no host log.")
@click.option(
    "--otel", is_flag=True,
    help="Export OpenTelemetry traces (OTLP, configured by the OTEL_* variables; on by itself when they name an "
    "endpoint). Needs the 'otel' extra.",
)
def cli(verbose: int, quiet: bool, otel: bool) -> None:
    """Durable Task / Durable Functions workflows on Azure Storage (DurableTask.AzureStorage layout)."""
    configure_logging(verbose=verbose, quiet=quiet)
    output.quiet = quiet
    if telemetry.wanted(otel):
        try:
            telemetry.configure(True)
        except RuntimeError as exc:
            raise click.UsageError(str(exc)) from exc


for _command in (azurite, demo, hosts.worker, hosts.run, sidecar, poison):
    cli.add_command(_command)
for _family in (instances.verbs, hosts.verbs, entities.verbs, operations.verbs):
    _family.register(cli)


def main() -> None:
    """Console entry point: every failure is one line ``error: ...`` on stderr and exit code 2."""
    try:
        code = cli.main(standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "durable-azstorage"
        _fail(f"{exc.format_message()} (see `{command} --help`)", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("aborted", 1)
    except DurableAzStorageError as exc:
        _fail(str(exc), 2)
    except AzureError as exc:  # storage unreachable or refusing us: configuration, not a crash
        _fail(f"storage request failed: {str(exc.message or exc).splitlines()[0]}", 2)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
