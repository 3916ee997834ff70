"""Run the management API: loopback without a key, anything else only with one."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from aiohttp import web

from ..aio import TaskHubClient
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ._app import create_app
from ._requests import DEFAULT_MAX_BODY_BYTES, is_loopback

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def serve(
    account: StorageAccount,
    task_hub_name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7071,
    key: str | None = None,
    connection_name: str = "Storage",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    stop: asyncio.Event | None = None,
    sock: socket.socket | None = None,
    extend: Callable[[web.Application, TaskHubClient], None] | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever). Binding beyond loopback requires ``key``.

    ``sock``: a socket already listening on ``host:port`` (the CLI binds before it touches storage).
    ``extend``: adds routes to the app before it starts (the CLI mounts the dashboard this way, so
    this package does not depend on the dashboard that builds on it).
    """
    if not is_loopback(host) and not key:
        raise ConfigurationError(
            f"refusing to serve on {host!r} without a key: the API exposes and controls every instance; "
            "pass a key (clients send it as ?code= or the x-functions-key header) or bind to 127.0.0.1"
        )
    async with await TaskHubClient.open(account, task_hub_name) as client:
        app = create_app(client, key=key, connection_name=connection_name, max_body_bytes=max_body_bytes)
        if extend is not None:
            extend(app, client)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site: web.BaseSite = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
        await site.start()
        log.warning("http.serving", extra={"host": host, "port": port, "task_hub": task_hub_name})
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await runner.cleanup()
