"""``durable-azstorage dashboard``: the dashboard and the management API on one port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..aio import TaskHubClient
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ..http import DEFAULT_MAX_BODY_BYTES, create_app, is_loopback
from ..metrics import TransactionCounter
from ._app import mount_dashboard
from ._overview import HealthCheck

__all__ = ["counted_account", "create_dashboard_app", "serve_dashboard"]

log = logging.getLogger(__name__)


def counted_account(account: StorageAccount) -> tuple[StorageAccount, TransactionCounter]:
    """A copy of ``account`` whose clients report every storage request to a new counter.

    Azurite serves the three services on ports of one host, so the ports are mapped to
    their service for the per-service breakdown.
    """
    ports: dict[int, str] = {}
    for service, endpoint in (
        ("blob", account.blob_endpoint),
        ("queue", account.queue_endpoint),
        ("table", account.table_endpoint),
    ):
        port = urlsplit(endpoint).port
        if port is not None:
            ports[port] = service
    counter = TransactionCounter(ports if len(ports) == 3 else None)
    existing = account.client_kwargs.get("raw_request_hook")
    if existing is None:
        return account.with_client_kwargs(**counter.client_kwargs()), counter

    def both(request: Any) -> None:  # keep a hook the caller installed (e.g. its own counter)
        existing(request)
        counter(request)

    return account.with_client_kwargs(raw_request_hook=both), counter


def create_dashboard_app(
    client: TaskHubClient,
    *,
    key: str | None = None,
    counter: TransactionCounter | None = None,
    health_checks: Sequence[HealthCheck] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sample_interval: float = 30.0,
) -> web.Application:
    """An aiohttp app with the management API and the dashboard (for servers without one)."""
    app = create_app(client, key=key, max_body_bytes=max_body_bytes)
    mount_dashboard(
        app, client, key=key, counter=counter, health_checks=health_checks, sample_interval=sample_interval
    )
    return app


async def serve_dashboard(
    account: StorageAccount,
    task_hub_name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7072,
    key: str | None = None,
    stop: asyncio.Event | None = None,
    started: asyncio.Future[str] | None = None,
    counter: TransactionCounter | None = None,
) -> None:
    """Serve until ``stop`` is set; ``started`` gets the base URL once listening (port 0 works).

    ``counter``: the account already reports to it (a worker in this process shares it, as the
    sidecar does); otherwise the dashboard counts its own transactions.
    """
    if not is_loopback(host) and not key:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host!r} without a key: it shows and controls every instance; "
            "pass --key (the page asks for it once) or bind to 127.0.0.1"
        )
    if counter is None:
        account, counter = counted_account(account)
    async with await TaskHubClient.open(account, task_hub_name) as client:
        runner = web.AppRunner(create_dashboard_app(client, key=key, counter=counter), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}/dashboard/"
        log.warning("dashboard.serving", extra={"url": url, "task_hub": task_hub_name})
        if started is not None and not started.done():
            started.set_result(url)
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await runner.cleanup()
