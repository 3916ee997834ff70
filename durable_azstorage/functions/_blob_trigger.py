"""The ``blobTrigger`` listener: polling by listing, with the host's receipts so a blob fires once.

Detection lists the container (from the literal prefix of ``path``) every polling interval and
matches names against the path pattern (``samples/{name}.csv`` binds ``{name}``). Exactly-once
per blob version is kept where the Functions host keeps it, so restarts, several hosts of the
app, and the .NET host agree:

``azure-webjobs-hosts/blobreceipts/{hostId}/Host.Functions.{name}/{ETag}/{container}/{blob}``

A receipt is created empty with metadata ``Incomplete`` before the function runs (create-if-
none-match, so one host wins), the winner holds a 30 s lease on it (renewed while the function
runs), and success removes ``Incomplete`` under that lease. A receipt without ``Incomplete`` means
done; a new ETag (the blob was overwritten) is a new version and fires again. A failure leaves the
receipt incomplete and the blob is retried on later polls; after ``maxDequeueCount`` attempts a
message naming the blob goes to ``webjobs-blobtrigger-poison`` (the host's poison queue) and the
receipt is completed. Completed versions are remembered in memory so steady-state polls read
no receipts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobClient, BlobLeaseClient, BlobServiceClient
from azure.storage.queue.aio import QueueClient

from ..errors import ConfigurationError
from ._singleton import HOSTS_CONTAINER

__all__ = ["POISON_QUEUE", "BlobListener", "BlobPattern"]

log = logging.getLogger(__name__)

POISON_QUEUE = "webjobs-blobtrigger-poison"
RECEIPT_LEASE = 30
INCOMPLETE = "Incomplete"

Invoke = Callable[[InputStream, Mapping[str, Any]], Awaitable[object]]


class BlobPattern:
    """``container/prefix{name}.ext``: the container, the listing prefix and a matcher."""

    def __init__(self, path: str) -> None:
        container, _, pattern = path.strip("/").partition("/")
        if not container or "{" in container:
            raise ConfigurationError(f"blobTrigger path {path!r} must start with a literal container name")
        self.container = container
        self.prefix = pattern.split("{", 1)[0]
        parts, position = [], 0
        for match in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern):
            parts.append(re.escape(pattern[position:match.start()]))
            parts.append(f"(?P<{match.group(1)}>.+?)")
            position = match.end()
        parts.append(re.escape(pattern[position:]))
        tail = "" if pattern else ".*"
        self._regex = re.compile("^" + "".join(parts) + tail + "$", re.DOTALL)

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self._regex.match(blob_name)
        return None if found is None else dict(found.groupdict())


class BlobListener:
    """Polls one container and runs the function once per new blob version."""

    def __init__(self, name: str, path: str, service: BlobServiceClient, hosts: BlobServiceClient,
                 poison: QueueClient, host_id: str, invoke: Invoke, *, poll_interval: timedelta,
                 max_attempts: int) -> None:
        self.name = name
        self.pattern = BlobPattern(path)
        self._service, self._invoke = service, invoke
        self._receipts = hosts.get_container_client(HOSTS_CONTAINER)
        self._poison_queue = poison
        self._prefix = f"blobreceipts/{host_id}/Host.Functions.{name}"
        self._interval = poll_interval.total_seconds()
        self._max_attempts = max_attempts
        self._done: set[tuple[str, str]] = set()
        self._attempts: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[bool]] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"blob {self.name}")
        log.info("functions.blob_listener_started", extra={"function_name": self.name,
                                                           "container": self.pattern.container})

    async def stop(self) -> None:
        """Stop scanning; the blob being processed finishes first (the host drains on stop too)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except ResourceNotFoundError:
                pass  # the container does not exist yet
            except AzureError as exc:
                log.warning("functions.blob_scan_failed", extra={"function_name": self.name, "error": str(exc)})
            await asyncio.sleep(self._interval)

    async def scan(self) -> int:
        """One listing pass; returns how many blobs fired."""
        container = self._service.get_container_client(self.pattern.container)
        fired = 0
        async for blob in container.list_blobs(name_starts_with=self.pattern.prefix or None, include=["metadata"]):
            groups = self.pattern.match(blob.name)
            key = (blob.name, str(blob.etag))
            if groups is None or key in self._done:
                continue
            # Shielded: a stopping host lets the blob finish and its receipt complete (else it fires again).
            task = asyncio.create_task(self._process(blob, groups))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            if await asyncio.shield(task):
                fired += 1
        return fired

    def _receipt(self, blob: BlobProperties) -> BlobClient:
        return self._receipts.get_blob_client(f"{self._prefix}/{blob.etag}/{self.pattern.container}/{blob.name}")

    async def _process(self, blob: BlobProperties, groups: dict[str, str]) -> bool:
        key = (blob.name, str(blob.etag))
        receipt = self._receipt(blob)
        if await self._completed(receipt):
            self._done.add(key)
            return False
        await self._create_receipt(receipt)
        lease = BlobLeaseClient(receipt)
        try:
            await lease.acquire(lease_duration=RECEIPT_LEASE)
        except (ResourceExistsError, ResourceNotFoundError, HttpResponseError):
            return False  # another host is on it
        try:
            if await self._completed(receipt):
                self._done.add(key)
                return False
            ok = await self._run_function(blob, groups, lease)
            attempts = self._attempts[key] = self._attempts.get(key, 0) + (0 if ok else 1)
            if not ok and attempts >= self._max_attempts:
                await self._poison(blob)
                ok = True
            if ok:
                await receipt.set_blob_metadata({}, lease=lease)
                self._done.add(key)
                self._attempts.pop(key, None)
            return ok
        finally:
            with contextlib.suppress(AzureError):
                await lease.release()

    async def _run_function(self, blob: BlobProperties, groups: dict[str, str], lease: BlobLeaseClient) -> bool:
        client = self._service.get_blob_client(self.pattern.container, blob.name)
        try:
            downloader = await client.download_blob(etag=blob.etag, match_condition=MatchConditions.IfNotModified)
            data = await downloader.readall()
        except (ResourceNotFoundError, HttpResponseError):
            return True  # deleted or replaced meanwhile: the new version fires on its own
        path = f"{self.pattern.container}/{blob.name}"
        properties = {"ETag": blob.etag, "Length": blob.size, "ContentType": blob.content_settings.content_type,
                      "LastModified": blob.last_modified.isoformat() if blob.last_modified else None}
        stream = InputStream(data=data, name=path, uri=client.url, length=len(data), blob_properties=properties,
                             metadata=dict(blob.metadata or {}))
        binding_data = {**groups, "BlobTrigger": path, "Uri": client.url, "Properties": properties,
                        "Metadata": dict(blob.metadata or {})}
        renewal = asyncio.create_task(self._renew(lease))
        try:
            await self._invoke(stream, binding_data)
            return True
        except Exception:  # user code: retried on a later poll, then poisoned
            log.exception("functions.blob_function_failed", extra={"function_name": self.name, "blob": path})
            return False
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal

    @staticmethod
    async def _renew(lease: BlobLeaseClient) -> None:
        with contextlib.suppress(AzureError):  # lost: another host may run it again (at-least-once)
            while True:
                await asyncio.sleep(RECEIPT_LEASE / 2)
                await lease.renew()

    async def _completed(self, receipt: BlobClient) -> bool:
        try:
            properties = await receipt.get_blob_properties()
        except ResourceNotFoundError:
            return False
        return INCOMPLETE not in (properties.metadata or {})

    async def _create_receipt(self, receipt: BlobClient) -> None:
        for _ in range(2):
            try:
                await receipt.upload_blob(b"", metadata={INCOMPLETE: INCOMPLETE}, overwrite=False)
                return
            except ResourceExistsError:
                return
            except ResourceNotFoundError:
                with contextlib.suppress(ResourceExistsError):
                    await self._receipts.create_container()
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):  # exists, or leased by another host
                    return
                raise

    async def _poison(self, blob: BlobProperties) -> None:
        """The host's BlobTriggerMessage in ``webjobs-blobtrigger-poison`` (plain JSON)."""
        message = json.dumps({"Type": "BlobTrigger", "FunctionId": f"Host.Functions.{self.name}",
                              "BlobType": "BlockBlob", "ContainerName": self.pattern.container,
                              "BlobName": blob.name, "ETag": blob.etag})
        log.warning("functions.blob_poisoned", extra={"function_name": self.name, "blob": blob.name,
                                                      "poison_queue": POISON_QUEUE})
        try:
            await self._poison_queue.send_message(message)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await self._poison_queue.create_queue()
            await self._poison_queue.send_message(message)
