"""A fault-injecting HTTP proxy between the workers and storage, driven by a seeded schedule.

One listener per storage service (blob, queue, table) forwards every request to the current
upstream (Azurite, or a real account's endpoints) and, by a seeded draw per request, instead:
answers 503 / 500 / 408 without forwarding; holds the request past the client's read timeout;
resets the connection before forwarding; or forwards it and resets the connection before the
answer (the write happened, the caller never hears so). History checkpoints (table transactions,
sent after an episode's or entity batch's messages) also fail with 503 at a rate of their own,
so attempts are discarded and run again often. ``outage(seconds)`` refuses every
request for a while. The upstream can be switched (an Azurite restart on new ports) without
the workers noticing anything but the outage.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from yarl import URL

__all__ = ["FaultProxy", "FaultRates"]

_HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade"}
)
SERVICES = ("blob", "queue", "table")


@dataclass(frozen=True)
class FaultRates:
    """Probability per request of each fault while faults are on (the rest is forwarded)."""

    status_503: float = 0.02
    status_500: float = 0.01
    status_408: float = 0.01
    delay: float = 0.005
    reset_before: float = 0.01
    reset_after: float = 0.01
    commit_503: float = 0.15
    """Extra, for history checkpoints (table ``$batch``) only: a 503 after the episode's (or the
    entity batch's) messages went out, so it is run again (a discarded attempt)."""

    def table(self) -> list[tuple[str, float]]:
        return [
            ("503", self.status_503),
            ("500", self.status_500),
            ("408", self.status_408),
            ("delay", self.delay),
            ("reset_before", self.reset_before),
            ("reset_after", self.reset_after),
        ]


@dataclass
class FaultProxy:
    """Start with :meth:`start`, point clients at :attr:`connection_string`, stop with :meth:`stop`."""

    seed: int
    rates: FaultRates = field(default_factory=FaultRates)
    delay_seconds: float = 6.0
    account_name: str = "devstoreaccount1"
    account_key: str = ""
    injected: Counter[str] = field(default_factory=Counter)
    forwarded: int = 0
    faults_on: bool = False

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._commit_rng = random.Random(self.seed * 7919 + 1)  # its own stream: the per-request draws stay put
        self._upstreams: dict[str, str] = {}
        self._ports: dict[str, int] = {}
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self._outage_until = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self, upstreams: dict[str, str]) -> None:
        self._upstreams = dict(upstreams)
        # No headers of aiohttp's own: the request is signed (Shared Key) over its headers.
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=120),
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent", "Accept"),
        )
        for service in SERVICES:
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handler(service))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self._ports.get(service, 0))
            await site.start()
            server = site._server
            assert server is not None
            self._ports[service] = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_upstreams(self, upstreams: dict[str, str]) -> None:
        self._upstreams = dict(upstreams)

    @property
    def connection_string(self) -> str:
        """The upstream endpoints with scheme, host and port replaced by the proxy's."""
        parts = [f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key}"]
        for service in SERVICES:
            path = URL(self._upstreams[service]).path.rstrip("/")
            parts.append(f"{service.capitalize()}Endpoint=http://127.0.0.1:{self._ports[service]}{path}")
        return ";".join(parts) + ";"

    def outage(self, seconds: float) -> None:
        """Refuse every request (connection reset) for ``seconds`` from now."""
        self._outage_until = time.monotonic() + seconds
        self.injected["outage"] += 1

    @property
    def in_outage(self) -> bool:
        return time.monotonic() < self._outage_until

    # ------------------------------------------------------------------ requests
    def _draw(self) -> str | None:
        if not self.faults_on:
            return None
        roll = self._rng.random()
        for name, rate in self.rates.table():
            if roll < rate:
                return name
            roll -= rate
        return None

    def _commit_fault(self, service: str, request: web.Request) -> bool:
        if not self.faults_on or service != "table" or not request.path.endswith("$batch"):
            return False
        return self._commit_rng.random() < self.rates.commit_503

    def _handler(self, service: str):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.in_outage:
                self.injected["outage_refusals"] += 1
                return _reset(request)
            fault = self._draw()
            if fault is None and self._commit_fault(service, request):
                fault = "commit_503"
            if fault is not None:
                self.injected[fault] += 1
            if fault in ("503", "500", "408", "commit_503"):
                await request.read()
                return _status(int(fault[:3]))
            if fault == "reset_before":
                return _reset(request)
            if fault == "delay":
                await asyncio.sleep(self.delay_seconds)  # past the client's read timeout
            upstream = await self._forward(service, request)
            if upstream is None:
                return _reset(request)
            if fault == "reset_after":
                return _reset(request)
            return upstream

        return handle

    async def _forward(self, service: str, request: web.Request) -> web.Response | None:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        origin = URL(self._upstreams[service]).origin()
        url = str(origin) + request.rel_url.raw_path_qs
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                payload = await response.read()
                out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
                self.forwarded += 1
                return web.Response(status=response.status, headers=out_headers, body=payload)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None  # the upstream is down (Azurite restarting): the caller sees a reset


def _status(code: int) -> web.Response:
    reason = {503: "ServerBusy", 500: "InternalError", 408: "OperationTimedOut"}[code]
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{reason}</Code>'
        f"<Message>injected by the chaos proxy</Message></Error>"
    )
    return web.Response(
        status=code, body=body.encode(), headers={"x-ms-error-code": reason, "Content-Type": "application/xml"}
    )


def _reset(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=503)  # never reaches the caller: the connection is gone
