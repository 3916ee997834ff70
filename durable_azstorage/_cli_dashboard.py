"""``durable-azstorage dashboard``: the browser dashboard (and the management API) on its own."""

from __future__ import annotations

import asyncio

import click

__all__ = ["register"]


def register(cli: click.Group) -> None:
    from ._cli_manage import _common, _run, resolve_account  # the shared hub/connection options

    @cli.command("dashboard")
    @_common
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option("--port", type=click.IntRange(0, 65535), default=7072, show_default=True)
    @click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Required when not bound to loopback.")
    def dashboard(
        connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
        host: str, port: int, key: str | None,
    ) -> None:
        """Serve the task hub's dashboard at http://HOST:PORT/dashboard/ until Ctrl-C."""
        from .dashboard import serve_dashboard

        async def main() -> None:
            started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            started.add_done_callback(lambda f: click.echo(f"dashboard of {task_hub_name}: {f.result()}", err=True))
            await serve_dashboard(
                resolve_account(connection, setting), task_hub_name, host=host, port=port, key=key, started=started
            )

        try:
            _run(main())
        except KeyboardInterrupt:
            pass
