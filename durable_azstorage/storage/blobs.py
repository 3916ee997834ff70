"""The ``{hub}-largemessages`` container: gzip payloads too big for a queue or table cell.

Both queue messages (> 45 KiB) and history/instance properties (> 60 KiB UTF-16) land here,
gzip-compressed, exactly as DTAS writes them, so .NET readers and ours share the blobs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import quote, unquote, urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from ..codec.queue_codec import gunzip_text, gzip_text

__all__ = ["LargePayloadStore", "gunzip_text", "gzip_text"]

_OWN_BLOB = re.compile(r"(?:message|history)-[^/]+")

log = logging.getLogger(__name__)


class LargePayloadStore:
    """Upload, download and purge compressed payload blobs of one task hub."""

    def __init__(self, service: BlobServiceClient, container_name: str) -> None:
        self._service = service
        self.container_name = container_name
        self._container: ContainerClient = service.get_container_client(container_name)
        self._created = False
        self._create_lock = asyncio.Lock()

    @property
    def container_url(self) -> str:
        return str(self._container.url).rstrip("/")

    async def ensure_container(self) -> None:
        """Create the container lazily on first use, as DTAS does (once per process)."""
        if self._created:
            return
        async with self._create_lock:
            if self._created:
                return
            try:
                await self._container.create_container()
            except ResourceExistsError:
                pass
            self._created = True

    async def upload_text(self, blob_name: str, text: str) -> None:
        await self.upload_text_bytes(blob_name, gzip_text(text))

    async def upload_text_bytes(self, blob_name: str, gzipped: bytes) -> None:
        """Upload text that is already gzip-compressed (as the queue codec prepares it)."""
        await self.ensure_container()
        await self._container.upload_blob(
            blob_name,
            gzipped,
            overwrite=True,
            content_settings=ContentSettings(content_type="application/octet-stream"),
        )

    async def download_text(self, blob_name: str) -> str:
        """Raises ``ResourceNotFoundError`` when the blob is gone (e.g. purged)."""
        downloader = await self._container.download_blob(blob_name)
        return gunzip_text(await downloader.readall())

    async def delete(self, blob_name: str) -> bool:
        try:
            await self._container.delete_blob(blob_name)
        except ResourceNotFoundError:
            return False
        return True

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose name starts with ``prefix``; returns how many went."""
        names: list[str] = []
        try:
            async for blob in self._container.list_blobs(name_starts_with=prefix):
                names.append(blob.name)
        except ResourceNotFoundError:
            return 0
        results = await asyncio.gather(*(self.delete(name) for name in names))
        return sum(1 for deleted in results if deleted)

    async def delete_instance_blobs(self, instance_id: str, partition_key: str) -> int:
        """Delete exactly the blobs one instance owns; returns how many went.

        Queue payloads are ``{raw id}/message-…``, history and Instances columns
        ``{partition key}/history-…``. A bare prefix ``{id}/`` would also match the blobs of an
        instance whose id merely starts with ``{id}/`` (ids may contain ``/``) and, for an
        instance named ``poison``, the quarantine's own blobs; so only names whose remainder is
        one of those two forms, without another ``/``, are this instance's.
        """
        names: set[str] = set()
        for prefix in {f"{instance_id}/", f"{partition_key}/"}:
            try:
                async for blob in self._container.list_blobs(name_starts_with=prefix):
                    if _OWN_BLOB.fullmatch(blob.name[len(prefix) :]):
                        names.add(blob.name)
            except ResourceNotFoundError:
                return 0
        results = await asyncio.gather(*(self.delete(name) for name in sorted(names)))
        return sum(1 for deleted in results if deleted)

    def url_for(self, blob_name: str) -> str:
        """Absolute URL the Instances table stores for large Input/Output (``GetBlobUrl``)."""
        escaped = "/".join(quote(segment, safe="") for segment in blob_name.split("/"))
        return f"{self.container_url}/{escaped}"

    def blob_name_from_url(self, url: str) -> str | None:
        """The blob name a stored URL points to, or None if it is not in our container.

        DTAS compares the whole endpoint; we compare only the container path, so a hub keeps
        working when the emulator's port or the account's custom domain changes.
        """
        path = urlsplit(url).path
        marker = f"/{self.container_name}/"
        index = path.find(marker)
        if index < 0:
            return None
        return unquote(path[index + len(marker) :])
