"""A listener that runs on one host at a time, held by a blob lease as the WebJobs host does it.

The timer listener is a ``[Singleton(Mode = Listener)]`` in the WebJobs SDK: before listening, a
host takes a 60 s lease on ``azure-webjobs-hosts/locks/{hostId}/{lockId}.Listener`` and renews it
every 30 s; a host that does not get it tries again every minute
(``ListenerLockRecoveryPollingInterval``) and starts listening when it does. Hosts of the same
app (same host id) therefore fire each schedule once between them, and hosts speaking to the
same account through the .NET host contend for the same blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobLeaseClient, BlobServiceClient, ContainerClient

__all__ = ["HOSTS_CONTAINER", "SingletonListener"]

log = logging.getLogger(__name__)

HOSTS_CONTAINER = "azure-webjobs-hosts"
LISTENER_LEASE = timedelta(seconds=60)


class SingletonListener:
    """Runs ``start``/``stop`` of a listener only while this host holds the lock blob's lease.

    ``lock_id`` is the WebJobs lock id, ``{hostId}/{function full name}.Listener``; the blob is
    ``locks/{lock_id}`` in ``azure-webjobs-hosts``.
    """

    def __init__(
        self,
        service: BlobServiceClient,
        lock_id: str,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        *,
        recovery_interval: timedelta = timedelta(minutes=1),
        lease: timedelta = LISTENER_LEASE,
    ) -> None:
        self._container: ContainerClient = service.get_container_client(HOSTS_CONTAINER)
        self._blob: BlobClient = self._container.get_blob_client(f"locks/{lock_id}")
        self._lock_path = f"locks/{lock_id}"
        self._start, self._stop = start, stop
        self._recovery = recovery_interval.total_seconds()
        self._lease_seconds = int(lease.total_seconds())
        self._lease: BlobLeaseClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.listening = False

    async def begin(self) -> None:
        """Try the lock once now (so a lone host starts listening at once), then keep trying."""
        await self._try_acquire()
        self._task = asyncio.create_task(self._run(), name=f"singleton {self._lock_path}")

    async def end(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._release()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            interval = self._lease_seconds / 2 if self.listening else self._recovery
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
            if self._stopping.is_set():
                return
            if self.listening:
                await self._renew()
            else:
                await self._try_acquire()

    async def _try_acquire(self) -> None:
        try:
            self._lease = await self._acquire()
        except AzureError as exc:
            log.warning("functions.singleton_lock_error", extra={"lock": self._lock_path, "error": str(exc)})
            return
        if self._lease is None:
            log.debug("functions.singleton_lock_held_elsewhere", extra={"lock": self._lock_path})
            return
        log.info("functions.singleton_lock_acquired", extra={"lock": self._lock_path})
        self.listening = True
        try:
            await self._start()
        except Exception:
            self.listening = False
            await self._release()
            raise

    async def _acquire(self) -> BlobLeaseClient | None:
        lease = BlobLeaseClient(self._blob)
        for _ in range(2):
            try:
                await lease.acquire(lease_duration=self._lease_seconds)
                return lease
            except ResourceNotFoundError:
                await self._create_blob()
            except ResourceExistsError:  # 409 LeaseAlreadyPresent
                return None
            except HttpResponseError as exc:
                if exc.status_code == 409:
                    return None
                raise
        return None

    async def _create_blob(self) -> None:
        try:
            await self._blob.upload_blob(b"", overwrite=False)
            return
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await self._container.create_container()
        except (ResourceExistsError, HttpResponseError):
            return  # created by another host meanwhile, or leased already
        with contextlib.suppress(ResourceExistsError, HttpResponseError):
            await self._blob.upload_blob(b"", overwrite=False)

    async def _renew(self) -> None:
        assert self._lease is not None
        try:
            await self._lease.renew()
        except AzureError as exc:
            log.warning("functions.singleton_lock_lost", extra={"lock": self._lock_path, "error": str(exc)})
            self.listening = False
            self._lease = None
            await self._stop()

    async def _release(self) -> None:
        if self.listening:
            self.listening = False
            await self._stop()
        if self._lease is not None:
            with contextlib.suppress(AzureError):
                await self._lease.release()
            self._lease = None
