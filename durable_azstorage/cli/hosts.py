"""Verbs that host things until SIGINT/SIGTERM: ``worker`` (a durabletask app module), ``run`` (an
Azure Functions app, like ``func start``), ``serve`` (the HTTP management API) and ``dashboard``."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from ..app_files import load_app_files
from ..codec.names import TaskHubNames
from ..connection import StorageAccount
from ..storage import TaskHubResources
from ._common import DEFAULT_HUB, Verbs, host_settings, load_register_function, resolve_account, run_async
from ._startup import announce, bind_port, check_storage, output

__all__ = ["run", "verbs", "worker"]

verbs = Verbs()


@click.command()
@click.option("--app", "app_spec", required=True, help="MODULE:FUNCTION that registers orchestrators and activities.")
@click.option(
    "--connection", envvar="AzureWebJobsStorage", help="Storage connection string (default: AzureWebJobsStorage)."
)
@click.option("--task-hub-name", envvar="DURABLE_TASK_HUB", default=DEFAULT_HUB, show_default=True)
@click.option("--partition-count", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--worker-id", help="Identity in the Partitions table (default: host:pid).")
@click.option("--max-polling-interval", type=float,
              help="Seconds an idle worker waits at most between polls (default 30; 2 on a local emulator).")
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
    max_polling_interval: float | None,
    visibility_timeout: float,
    lease_interval: float,
    drain_timeout: float,
    health_port: int | None,
    health_host: str,
) -> None:
    """Run a worker for the functions an app module registers, until SIGINT/SIGTERM."""
    from ..settings import WorkerSettings
    from ..worker import Worker

    register = load_register_function(app_spec)
    account = resolve_account(connection, None)
    overrides = host_settings(
        account, task_hub_name=task_hub_name, partition_count=partition_count,
        visibility_timeout=visibility_timeout, lease_interval=lease_interval,
        max_polling_interval=max_polling_interval, worker_id=worker_id,
        drain_timeout=timedelta(seconds=drain_timeout),
    )
    host = Worker(account, WorkerSettings(**overrides))
    register(host)
    if health_port:  # probes bind before the worker starts, like every other port
        bind_port(health_host, health_port, option="--health-port").close()
    announce(task_hub_name, account, "worker on")
    run_async(_preflight(account, task_hub_name))
    asyncio.run(_serve_worker(host, health_host, health_port))


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM (the container runtime's stop signal)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _preflight(account: StorageAccount, task_hub_name: str) -> None:
    """Storage answers and the key is right before a worker starts (it creates the hub if missing)."""
    state = await check_storage(account, task_hub_name)
    if not state.exists:
        output.say(f"task hub {task_hub_name} does not exist yet: creating it")


async def _serve_worker(host: Any, health_host: str, health_port: int | None) -> None:
    from ..worker.serve import serve_worker, stop_on_signals

    def started(worker: Any, probes: Any) -> None:
        where = f", probes on {health_host}:{probes.port}" if probes else ""
        ceiling = worker.settings.max_queue_polling_interval.total_seconds()
        output.say(f"worker {worker.settings.worker_id} running on task hub {worker.settings.task_hub_name}{where} "
                   f"(polls at most every {ceiling:g}s when idle)")

    stop = asyncio.Event()
    stop_on_signals(stop)
    await serve_worker(host, stop, health_host=health_host, health_port=health_port, on_started=started,
                       on_stopping=lambda: output.say("stopping: releasing partitions"))


@click.command("run")
@click.argument("app", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=7071, show_default=True)
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Function/system key; required off loopback.")
@click.option("--connection", help="Connection string or setting name (default: host.json, AzureWebJobsStorage).")
@click.option("--task-hub-name", envvar="DURABLE_TASK_HUB", help=f"Default: host.json hubName, else {DEFAULT_HUB}.")
@click.option("--health-port", type=click.IntRange(0, 65535), envvar="DURABLE_AZSTORAGE_HEALTH_PORT",
              help="Serve /healthz and /readyz on this port (default: off).")
@click.option("--health-host", envvar="DURABLE_AZSTORAGE_HEALTH_HOST", default="127.0.0.1", show_default=True,
              help="Interface for the probes (0.0.0.0 in a container).")
def run(
    app: Path, port: int, bind: str, key: str | None, connection: str | None, task_hub_name: str | None,
    health_port: int | None, health_host: str,
) -> None:
    """Run APP (a folder or function_app.py) like `func start`: worker, HTTP triggers, management API."""
    from ..functions import FunctionsHost, load_app

    folder = app if app.is_dir() else app.parent
    files = load_app_files(folder)
    files.apply_local_values()  # before anything reads the environment, as the Functions host does
    index = load_app(app)
    account = resolve_account(connection, files.connection_setting())
    sock = bind_port(bind, port)  # first: a taken port must not cost a worker start or a lease
    try:
        if health_port:
            bind_port(health_host, health_port, option="--health-port").close()
        host = FunctionsHost(index, account, app_files=files, task_hub_name=task_hub_name, host=bind, port=port,
                             key=key, sock=sock)
        announce(host.settings.task_hub_name, account, "Functions host on")
        run_async(_preflight(account, host.settings.task_hub_name))
    except BaseException:
        sock.close()
        raise
    for problem in index.problems:
        click.echo(f"warning: {problem}", err=True)
    asyncio.run(_serve_functions(host, health_host, health_port))


async def _serve_functions(host: Any, health_host: str = "127.0.0.1", health_port: int | None = None) -> None:
    from ..worker.serve import probes

    async with probes(host.worker, host=health_host, port=health_port) as (health, _server), host:
        health.state = "running"
        _describe(host)
        await _until_stopped()
        health.state = "stopping"
        output.say("stopping: releasing partitions")


def _describe(host: Any) -> None:
    index = host.index
    output.say(f"Functions app {index.root} ({index.model} programming model), task hub {host.settings.task_hub_name}")
    output.say("Functions:")
    for function in index.http:
        methods = ",".join(function.methods or ("ALL",))
        route = f"{host.route_prefix}/{function.route}".strip("/").replace("//", "/")
        output.say(f"  {function.name}: [{methods}] {host.base_url}/{route}")
    for kind, names in (("orchestrationTrigger", index.orchestrators), ("activityTrigger", index.activities),
                        ("entityTrigger", index.entities)):
        for name in names:
            output.say(f"  {name}: {kind}")
    for trigger in index.triggers:
        binding = trigger.trigger
        detail = binding.get("schedule") or binding.get("queueName") or binding.get("path") or ""
        output.say(f"  {trigger.name}: {binding.raw.get('type', binding.type)} {detail}")
    for problem in index.problems:
        if "is not listening" in problem:  # found while starting the trigger listeners
            click.echo(f"warning: {problem}", err=True)
    output.say(f"Management API: {host.base_url}/runtime/webhooks/durabletask")
    output.say(f"Dashboard: {host.base_url}/dashboard/")
    output.say("Host started; Ctrl-C stops it and releases its partitions.")


@verbs.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=7071, show_default=True)
@click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Required when not bound to loopback.")
def serve(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    host: str, port: int, key: str | None,
) -> None:
    """Serve the Durable Functions HTTP management API (and the dashboard) for the task hub (created if missing)."""
    from ..http import serve as serve_api

    account = resolve_account(connection, setting)
    sock = bind_port(host, port)
    try:
        run_async(_serve_api(serve_api, account, task_hub_name, host, sock, key))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


async def _serve_api(
    serve_api: Any, account: StorageAccount, task_hub_name: str, host: str, sock: Any, key: str | None
) -> None:
    state = await check_storage(account, task_hub_name)
    if not state.exists:  # as the Functions host does at start-up, instead of 500s on every request
        await TaskHubResources(account, TaskHubNames(task_hub_name)).create()
        output.say(f"created task hub {task_hub_name}")
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    output.say(f"serving {task_hub_name} on http://{url_host}:{port}/runtime/webhooks/durabletask")
    output.say(f"dashboard: http://{url_host}:{port}/dashboard/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from ..dashboard import counted_account, mount_dashboard

    account, counter = counted_account(account)  # the dashboard shows this process's transactions
    await serve_api(
        account, task_hub_name, host=host, port=port, key=key, sock=sock, stop=stop,
        extend=lambda app, client: mount_dashboard(app, client, key=key, counter=counter),
    )


@verbs.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=7072, show_default=True)
@click.option("--key", envvar="DURABLE_AZSTORAGE_HTTP_KEY", help="Required when not bound to loopback.")
def dashboard(
    connection: str | None, setting: str | None, task_hub_name: str, as_json: bool,
    host: str, port: int, key: str | None,
) -> None:
    """Serve the task hub's dashboard at http://HOST:PORT/dashboard/ until Ctrl-C."""
    from ..dashboard import serve_dashboard

    account = resolve_account(connection, setting)
    if port:
        bind_port(host, port).close()  # a taken port is one line before anything starts

    async def main() -> None:
        await check_storage(account, task_hub_name)
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started.add_done_callback(lambda f: click.echo(f"dashboard of {task_hub_name}: {f.result()}", err=True))
        await serve_dashboard(
            account, task_hub_name, host=host, port=port, key=key, started=started
        )

    try:
        run_async(main())
    except KeyboardInterrupt:
        pass
