"""What every command checks before it does anything: where it works, and that it can.

* :func:`announce` prints the task hub and the storage account a command uses (stderr), so a
  wrong hub or a wrong account is visible before anything waits on it.
* :func:`check_storage` makes one cheap request with azure-core's retries switched off and
  retries it itself, printing each attempt; an unreachable endpoint gives up in seconds with
  one line instead of azure-core's minute and a half of silent retries, and a wrong key says
  it is the key.
* :func:`bind_port` takes the listening socket before any worker starts, so a taken port is
  one line and exit 2 with nothing started and no partition lease held. The gRPC sidecar and
  the HTTP hosts share it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import click
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from ..codec.names import TaskHubNames
from ..connection import StorageAccount
from ..errors import ConfigurationError, TaskHubNotFoundError
from ..storage.partition_table import PartitionTable

__all__ = [
    "HubState",
    "StartupOutput",
    "account_label",
    "announce",
    "bind_port",
    "check_storage",
    "hub_missing_error",
    "output",
]

AZURITE_HINT = "is Azurite running? start it with `durable-azstorage azurite`"
_DELAYS = (0.5, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0)
"""Seconds between attempts: 8 attempts, about 10 s in all, then one line and exit 2."""


@dataclass
class StartupOutput:
    """Whether start-up lines (hub, account, retries) are printed: ``--quiet`` turns them off."""

    quiet: bool = False

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)


output = StartupOutput()


def account_label(account: StorageAccount) -> str:
    return account.label


def announce(task_hub: str, account: StorageAccount, action: str = "using") -> None:
    output.say(f"{action} task hub {task_hub} in storage account {account_label(account)}")


def hub_missing_error(task_hub: str, account: StorageAccount) -> TaskHubNotFoundError:
    return TaskHubNotFoundError(
        f"task hub {task_hub} does not exist in account {account_label(account)}; "
        "check --task-hub-name / --connection, or start an instance first (start-new creates the hub)"
    )


@dataclass(frozen=True)
class HubState:
    """What one probe learned: the hub's Instances table exists; when a worker last held a lease."""

    exists: bool
    ever_served: bool = False
    last_renewal: datetime | None = None

    @property
    def served_now(self) -> bool:
        if self.last_renewal is None:
            return False
        renewal = self.last_renewal if self.last_renewal.tzinfo else self.last_renewal.replace(tzinfo=timezone.utc)
        return (datetime.now(timezone.utc) - renewal).total_seconds() < 60


def _is_local(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).splitlines()[0]
    lowered = text.lower()
    if "refused" in lowered or "connect call failed" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "the host name does not resolve"
    return text[:160]


def _auth_error(account: StorageAccount, exc: HttpResponseError) -> ConfigurationError:
    code = getattr(exc, "error_code", None) or exc.reason or exc.status_code
    return ConfigurationError(
        f"storage account {account_label(account)} refused our credentials ({code}): the AccountKey or "
        "SharedAccessSignature in the connection string is wrong or expired; copy it again from the portal"
        " (Access keys) or use UseDevelopmentStorage=true for Azurite"
    )


async def _probe_once(account: StorageAccount, names: TaskHubNames) -> HubState:
    async with account.table_service() as tables:
        try:
            async for _ in tables.get_table_client(names.instances_table).list_entities(
                results_per_page=1, select=["PartitionKey"]
            ):
                break
        except ResourceNotFoundError:
            return HubState(exists=False)
        try:
            leases = await PartitionTable(tables.get_table_client(names.partitions_table)).read_all()
        except (TaskHubNotFoundError, ResourceNotFoundError):
            return HubState(exists=True)
    renewals = [lease.last_renewal for lease in leases if lease.last_renewal is not None]
    ever = any(lease.current_owner or lease.owned_since or lease.last_renewal for lease in leases)
    return HubState(exists=True, ever_served=ever, last_renewal=max(renewals) if renewals else None)


async def check_storage(
    account: StorageAccount,
    task_hub: str,
    *,
    delays: tuple[float, ...] = _DELAYS,
    say: Callable[[str], None] | None = None,
) -> HubState:
    """Reach the account's table endpoint (retrying with progress lines) and look at the hub."""
    quick = account.with_client_kwargs(retry_total=0, connection_timeout=5)
    names = TaskHubNames(task_hub)
    say = say or output.say
    attempts = len(delays) + 1
    hint = AZURITE_HINT if _is_local(account.table_endpoint) else "check the account name and the network"
    for attempt in range(1, attempts + 1):
        try:
            return await _probe_once(quick, names)
        except ClientAuthenticationError as exc:
            raise _auth_error(account, exc) from None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise _auth_error(account, exc) from None
            if exc.status_code is not None and exc.status_code < 500:
                raise
            reason = f"HTTP {exc.status_code}"
        except (ServiceRequestError, OSError, asyncio.TimeoutError) as exc:
            reason = _reason(exc)
        if attempt == attempts:
            raise ConfigurationError(
                f"cannot reach table endpoint {account.table_endpoint} ({reason}) after {attempts} attempts; {hint}"
            )
        say(f"cannot reach table endpoint {account.table_endpoint} ({reason}); retrying ({attempt}/{attempts - 1}); "
            f"{hint}")
        await asyncio.sleep(delays[attempt - 1])
    raise AssertionError("unreachable")


def bind_port(host: str, port: int, *, option: str = "--port") -> socket.socket:
    """Listen on ``host:port`` now (before any worker starts); a taken port is one clear line.

    The caller hands the socket to its server (aiohttp ``SockSite``, grpc ``add_insecure_port``
    on the same port after closing it, ...). Port 0 picks a free port: read ``getsockname()``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} is in use; pass {option} (e.g. {option} {port + 1})") from None
        if exc.errno == errno.EACCES:
            raise ConfigurationError(f"no permission to listen on port {port}; pass {option} above 1023") from None
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror}); pass --host / {option}") from None
    sock.setblocking(False)
    return sock
