"""``durable-azstorage sidecar``: the gRPC endpoint for durabletask SDK workers and clients."""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from ._common import DEFAULT_HUB, host_settings, run_async
from ._startup import announce, bind_port, check_storage

__all__ = ["sidecar"]


@click.command("sidecar")
@click.option("--port", type=click.IntRange(0, 65535), default=4001, show_default=True)
@click.option("--host", "bind", default="localhost", show_default=True, help="Interface to listen on.")
@click.option("--key", envvar="DURABLE_AZSTORAGE_SIDECAR_KEY", help="Require 'authorization: Bearer KEY'.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM chain.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="PEM key.")
@click.option(
    "--connection", envvar="AzureWebJobsStorage", help="Storage connection string (default: AzureWebJobsStorage)."
)
@click.option("--task-hub-name", envvar="DURABLE_TASK_HUB", default=DEFAULT_HUB, show_default=True,
              help="The same default as `worker`, so both serve one hub side by side.")
@click.option("--partition-count", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--worker-id", help="Identity in the Partitions table (default: host:pid).")
@click.option("--max-polling-interval", type=float,
              help="Seconds an idle worker waits at most between polls (default 30; 2 on a local emulator).")
@click.option(
    "--max-concurrent-activities", type=click.IntRange(1, 10_000), default=100, show_default=True,
    help="Activity work items held for connected workers at once (workers' own limits still apply).",
)
@click.option("--visibility-timeout", type=float, default=300.0, show_default=True, help="Seconds, both queues.")
@click.option(
    "--lease-interval", type=float, default=30.0, show_default=True,
    help="Seconds a partition lease lasts without renewal (failover time after a crash).",
)
@click.option("--dashboard-port", type=click.IntRange(0, 65535), help="Also serve the dashboard on this port.")
@click.option("--health-port", type=click.IntRange(0, 65535), envvar="DURABLE_AZSTORAGE_HEALTH_PORT",
              help="Serve /healthz and /readyz on this port (default: off).")
@click.option("--health-host", envvar="DURABLE_AZSTORAGE_HEALTH_HOST", default="127.0.0.1", show_default=True,
              help="Interface for the probes (0.0.0.0 in a container).")
def sidecar(
    port: int,
    bind: str,
    key: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    connection: str | None,
    task_hub_name: str,
    partition_count: int,
    worker_id: str | None,
    max_polling_interval: float | None,
    max_concurrent_activities: int,
    visibility_timeout: float,
    lease_interval: float,
    dashboard_port: int | None,
    health_port: int | None,
    health_host: str,
) -> None:
    """Serve the Durable Task gRPC protocol (TaskHubSidecarService) on this task hub."""
    from ..connection import StorageAccount
    from ..settings import WorkerSettings
    from ..sidecar.server import Sidecar, TlsFiles

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    tls = TlsFiles(tls_cert.read_bytes(), tls_key.read_bytes()) if tls_cert and tls_key else None
    account = StorageAccount.from_connection_string(connection) if connection else StorageAccount.from_settings()
    overrides = host_settings(
        account, task_hub_name=task_hub_name, partition_count=partition_count,
        visibility_timeout=visibility_timeout, lease_interval=lease_interval,
        max_polling_interval=max_polling_interval, worker_id=worker_id,
        max_concurrent_activities=max_concurrent_activities,
    )
    if port:  # a taken port is one line before any worker starts (gRPC binds it again just below)
        bind_port(bind, port).close()
    announce(task_hub_name, account, "sidecar on")
    run_async(check_storage(account, task_hub_name))
    dashboard = None
    if dashboard_port is not None:
        from ..dashboard import counted_account, serve_dashboard

        account, counter = counted_account(account)  # the worker's transactions show on the dashboard
        dashboard = functools.partial(serve_dashboard, account, task_hub_name, host=bind, port=dashboard_port,
                                      key=key, counter=counter)
    server = Sidecar(account, WorkerSettings(**overrides), host=bind, port=port, key=key, tls=tls)
    asyncio.run(_serve(server, dashboard, health=(health_host, health_port)))


async def _serve(
    server: Any,
    dashboard: Callable[..., Coroutine[Any, Any, None]] | None = None,
    health: tuple[str, int | None] = ("127.0.0.1", None),
) -> None:
    from ..worker.serve import probes

    async with probes(server.worker, host=health[0], port=health[1]) as (state, _server):
        await _serve_sidecar(server, dashboard, state)


async def _serve_sidecar(server: Any, dashboard: Callable[..., Coroutine[Any, Any, None]] | None, health: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        health.state = "running"
        click.echo(
            f"sidecar listening on {server.address} for task hub {server.settings.task_hub_name} "
            f"(worker {server.settings.worker_id})",
            err=True,
        )
        site: asyncio.Task[None] | None = None
        if dashboard is not None:
            started: asyncio.Future[str] = loop.create_future()
            site = asyncio.create_task(dashboard(stop=stop, started=started))
            watch: set[asyncio.Future[Any]] = {started, site}
            await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
            if site.done():
                site.result()  # it could not start (port in use, no key off loopback): say so now
            click.echo(f"dashboard: {started.result()}", err=True)
        await stop.wait()
        health.state = "stopping"
        if site is not None:
            await site
        click.echo("stopping: handing work and partitions back", err=True)
