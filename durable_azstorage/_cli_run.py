"""``durable-azstorage run``: host an Azure Functions Python app (v2 ``function_app.py`` or v1 folders)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

__all__ = ["register"]


def register(cli: click.Group) -> None:
    @cli.command("run")
    @click.argument("app", default=".", type=click.Path(exists=True, path_type=Path))
    @click.option("--port", type=click.IntRange(0, 65535), default=7071, show_default=True)
    @click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Function/system key; required off loopback.")
    @click.option("--connection", help="Connection string or setting name (default: host.json, AzureWebJobsStorage).")
    @click.option("--task-hub-name", envvar="DURABLE_TASK_HUB", help="Default: host.json hubName, else TestHubName.")
    def run(
        app: Path, port: int, bind: str, key: str | None, connection: str | None, task_hub_name: str | None
    ) -> None:
        """Run APP (a folder or function_app.py) like `func start`: worker, HTTP triggers, management API."""
        from ._cli_manage import resolve_account
        from .app_files import load_app_files
        from .functions import FunctionsHost, load_app

        folder = app if app.is_dir() else app.parent
        files = load_app_files(folder)
        files.apply_local_values()  # before anything reads the environment, as the Functions host does
        index = load_app(app)
        account = resolve_account(connection, files.connection_setting())
        host = FunctionsHost(index, account, app_files=files, task_hub_name=task_hub_name, host=bind, port=port,
                             key=key)
        for problem in index.problems:
            click.echo(f"warning: {problem}", err=True)
        asyncio.run(_serve(host))


async def _serve(host: object) -> None:
    from .functions import FunctionsHost

    assert isinstance(host, FunctionsHost)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with host:
        _describe(host)
        await stop.wait()
        click.echo("stopping: releasing partitions", err=True)


def _describe(host: object) -> None:
    from .functions import FunctionsHost

    assert isinstance(host, FunctionsHost)
    index = host.index
    click.echo(f"Functions app {index.root} ({index.model} programming model), task hub "
               f"{host.settings.task_hub_name}", err=True)
    for function in index.http:
        methods = ",".join(function.methods or ("ALL",))
        click.echo(f"  {function.name}: [{methods}] {host.base_url}/{host.route_prefix}/{function.route}".replace(
            "//" + function.route, "/" + function.route), err=True)
    for kind, names in (("orchestrator", index.orchestrators), ("activity", index.activities),
                        ("entity", index.entities)):
        for name in names:
            click.echo(f"  {name}: {kind}", err=True)
    for trigger in index.triggers:
        binding = trigger.trigger
        detail = binding.get("schedule") or binding.get("queueName") or binding.get("path") or ""
        click.echo(f"  {trigger.name}: {binding.raw.get('type', binding.type)} {detail}", err=True)
    click.echo(f"Management API: {host.base_url}/runtime/webhooks/durabletask", err=True)
    click.echo(f"Dashboard: {host.base_url}/dashboard/", err=True)
