"""``ContainerClient`` with blob get, put and delete on the lean transport.

Only single-shot block-blob uploads of bytes up to 64 MiB (the SDK's single-put size) run
here; streams, larger bodies, leases and listings stay on the SDK.
"""

from __future__ import annotations

from typing import Any

from azure.storage.blob.aio import ContainerClient

from .transport import RestResponse, RestTransport
from .urls import quote_blob_name

__all__ = ["DownloadedBlob", "LeanContainerClient"]

_MAX_SINGLE_PUT = 64 * 1024 * 1024


class DownloadedBlob:
    """The part of ``StorageStreamDownloader`` the stores use."""

    def __init__(self, name: str, data: bytes, properties: dict[str, str]) -> None:
        self.name = name
        self._data = data
        self.properties = properties
        self.size = len(data)

    async def readall(self) -> bytes:
        return self._data

    async def content_as_bytes(self, max_concurrency: int = 1) -> bytes:
        return self._data


class LeanContainerClient(ContainerClient):
    """Made by :meth:`adopt` from an SDK-built client; ``_rest`` is the shared transport."""

    _rest: RestTransport

    @classmethod
    def adopt(cls, client: ContainerClient, transport: RestTransport) -> LeanContainerClient:
        client.__class__ = cls
        lean: LeanContainerClient = client  # type: ignore[assignment]
        lean._rest = transport
        return lean

    def _path(self, name: str) -> str:
        return f"/{self.container_name}/{quote_blob_name(name)}"

    async def _send(self, method: str, path: str, **kwargs: Any) -> RestResponse:
        response = await self._rest.send(method, path, **kwargs)
        if response.status >= 300:
            raise response.error()
        return response

    async def upload_blob(  # type: ignore[override]
        self, name: Any, data: Any, blob_type: Any = None, length: Any = None, **kwargs: Any
    ) -> Any:
        body = data.encode(kwargs.get("encoding", "UTF-8")) if isinstance(data, str) else data
        simple = isinstance(body, bytes) and len(body) <= _MAX_SINGLE_PUT and blob_type in (None, "BlockBlob")
        if not simple or set(kwargs) - {"overwrite", "content_settings", "encoding"}:
            return await super().upload_blob(name, data, length=length, **kwargs)
        blob_name = str(getattr(name, "name", name))
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
        settings = kwargs.get("content_settings")
        if settings is not None and settings.content_type:
            headers["x-ms-blob-content-type"] = settings.content_type
        if not kwargs.get("overwrite", False):
            headers["If-None-Match"] = "*"
        await self._send("PUT", self._path(blob_name), headers=headers, body=body)
        return self.get_blob_client(blob_name)

    async def download_blob(self, blob: Any, offset: Any = None, length: Any = None, **kwargs: Any) -> Any:
        if offset is not None or length is not None or kwargs:
            return await super().download_blob(blob, offset, length, **kwargs)
        name = str(getattr(blob, "name", blob))
        response = await self._send("GET", self._path(name))
        return DownloadedBlob(name, response.body, dict(response.headers))

    async def delete_blob(self, blob: Any, delete_snapshots: Any = None, **kwargs: Any) -> None:
        if delete_snapshots is not None or kwargs:
            await super().delete_blob(blob, delete_snapshots, **kwargs)
            return
        await self._send("DELETE", self._path(str(getattr(blob, "name", blob))))
