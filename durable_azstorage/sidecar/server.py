"""The sidecar process: a ``grpc.aio`` server plus this project's worker host on one task hub.

The worker host is the ordinary :class:`~durable_azstorage.worker.Worker` (partition leases,
control-queue pumps, DTAS checkpoints) with remote runtimes, so sidecars on several machines
share one hub the way workers do, next to in-process Python workers and .NET hosts.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from ..aio import TaskHubClient
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ..settings import WorkerSettings
from ..worker import Worker
from .broker import Broker
from .client_service import ClientService
from .hints import EpisodeHints
from .hubs import HubClients
from .remote_runtime import RemoteActivityRuntime, RemoteEntityRuntime, RemoteOrchestrationRuntime
from .service import KeyInterceptor, SidecarServicer, add_to_server
from .worker_service import PING_INTERVAL, WorkerService

__all__ = ["DEFAULT_PORT", "ClientEndpoint", "Sidecar", "TlsFiles", "client_servicer", "is_loopback"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 4001
# Activity work items the host holds for remote workers at once. In-process, 10 bounds the
# thread pool; here the connected workers' own limits bound execution, and a work item beyond
# the host's slots waits in the shared queue behind the polling back-off instead.
SIDECAR_ACTIVITY_SLOTS = 100
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # histories and payloads beyond gRPC's 4 MB default
_GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


@dataclass(frozen=True)
class TlsFiles:
    certificate_chain: bytes
    private_key: bytes


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails with "address in use" on any address it resolves to."""
    if port == 0:
        return False
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # let gRPC report what it makes of the name
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def client_servicer(account: StorageAccount, task_hub: str, client: TaskHubClient | None = None) -> SidecarServicer:
    """The client half alone, for embedding in another ``grpc.aio`` server (the Functions host)."""
    return SidecarServicer(ClientService(HubClients(account, task_hub, default_client=client)))


class ClientEndpoint:
    """The client half alone on its own ``grpc.aio`` server (no worker, no partitions).

    For hosts that run user code themselves but must answer gRPC clients, such as the
    Functions host for azure-functions-durable 2.x (``rpcBaseUrl`` = ``http://127.0.0.1:PORT``).
    ``client`` (an open async TaskHubClient, e.g. over the host worker's own storage) serves
    the default hub; other hubs named in ``taskhub`` metadata are opened on demand.
    """

    def __init__(
        self,
        account: StorageAccount,
        task_hub: str,
        *,
        client: TaskHubClient | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback(host):
            raise ConfigurationError(f"the client endpoint serves loopback only, not {host}")
        self._hubs = HubClients(account, task_hub, default_client=client)
        self.host, self.port = host, port
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server(options=_GRPC_OPTIONS)
        add_to_server(SidecarServicer(ClientService(self._hubs)), server)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self._hubs.close()

    async def __aenter__(self) -> ClientEndpoint:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class Sidecar:
    """``durable-azstorage sidecar``: serve ``TaskHubSidecarService`` for one task hub.

    ``host`` off loopback needs ``key`` or ``tls`` (plaintext without a key would let anyone
    on the network run code paths and read payloads). ``port=0`` picks a free port
    (see :attr:`port` after :meth:`start`).
    """

    def __init__(
        self,
        account: StorageAccount,
        settings: WorkerSettings | None = None,
        *,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        key: str | None = None,
        tls: TlsFiles | None = None,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        if not is_loopback(host) and key is None and tls is None:
            raise ConfigurationError(
                f"refusing to serve plaintext without a key on {host}: pass --key (or --tls-cert/--tls-key), "
                "or bind to localhost"
            )
        self.account = account
        self.settings = settings or WorkerSettings(max_concurrent_activities=SIDECAR_ACTIVITY_SLOTS)
        self.host = host
        self.port = port
        self._key = key
        self._tls = tls
        self.broker = Broker()
        self.hints = EpisodeHints()
        self.worker = Worker(
            account,
            self.settings,
            orchestration_runtime=RemoteOrchestrationRuntime(self.broker, self.hints),
            activity_runtime=RemoteActivityRuntime(self.broker),
            entity_runtime=RemoteEntityRuntime(self.broker),
        )
        self._worker_service = WorkerService(self.broker, ping_interval=ping_interval)
        self._hubs: HubClients | None = None
        self._server: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind first (a taken port fails before any storage work), then the worker, then serve."""
        self._hubs = hubs = HubClients(self.account, self.settings.task_hub_name)
        servicer = SidecarServicer(ClientService(hubs, hints=self.hints), self._worker_service)
        interceptors = [KeyInterceptor(self._key)] if self._key else []
        server = grpc.aio.server(options=_GRPC_OPTIONS, interceptors=interceptors)
        add_to_server(servicer, server)
        bind = f"{self.host}:{self.port}"
        if port_in_use(self.host, self.port):  # before gRPC, whose C core would log its own error
            raise ConfigurationError(f"cannot listen on {bind}: the port is in use (choose another with --port)")
        try:
            if self._tls is not None:
                credentials = grpc.ssl_server_credentials([(self._tls.private_key, self._tls.certificate_chain)])
                port = server.add_secure_port(bind, credentials)
            else:
                port = server.add_insecure_port(bind)
        except RuntimeError:
            port = 0
        if port == 0:
            raise ConfigurationError(f"cannot listen on {bind}: the port is in use (choose another with --port)")
        self.port = port
        await self.worker.start()
        # The client half shares the worker's storage objects: a start for an owned partition
        # goes straight to its pump (local dispatch) instead of waiting for the next poll.
        hubs.set_default(TaskHubClient(self.worker.hub))
        await server.start()
        self._server = server
        log.info("sidecar.started", extra={"address": self.address, "task_hub": self.settings.task_hub_name})

    async def stop(self, grace: float = 2.0) -> None:
        """Drain with the workers still connected, then close.

        The host stops taking messages and hands its partitions over; work already leased may
        still be done by connected workers until the drain timeout. With no worker connected,
        waiting work is given back at once instead of waiting for the drain to time out.
        """
        if self.broker.worker_count == 0:
            self.broker.stop_waiting()
        await self.worker.stop()
        self.broker.stop_waiting()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self.broker.close()
        if self._hubs is not None:
            await self._hubs.close()
            self._hubs = None
        log.info("sidecar.stopped", extra={"address": self.address})

    async def __aenter__(self) -> Sidecar:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
