"""Service clients whose data-plane children are lean; chosen by ``StorageAccount``.

``DURABLE_AZSTORAGE_DATA_PATH=sdk`` (or ``StorageAccount(data_path="sdk")``) keeps every
call on the Azure SDK, e.g. to rule the lean path out when chasing a problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from ..errors import ConfigurationError
from .auth import Service, authorizer_for
from .blobs import LeanContainerClient
from .queues import LeanQueueClient
from .tables import LeanTableClient
from .transport import RestTransport, RetrySettings

__all__ = [
    "DATA_PATHS",
    "DATA_PATH_ENV",
    "data_path_from_env",
    "lean_blob_service",
    "lean_queue_service",
    "lean_table_service",
]

DATA_PATH_ENV = "DURABLE_AZSTORAGE_DATA_PATH"
DATA_PATHS = ("lean", "sdk")


def data_path_from_env() -> str:
    value = (os.environ.get(DATA_PATH_ENV) or "lean").strip().lower()
    if value not in DATA_PATHS:
        raise ConfigurationError(f"{DATA_PATH_ENV}={value!r}: use 'lean' (default) or 'sdk'")
    return value


def _transport(
    endpoint: str, service: Service, credential: object, account_name: str | None, kwargs: Mapping[str, Any]
) -> RestTransport:
    return RestTransport(
        endpoint,
        service,
        authorizer_for(credential, account_name),
        api_version=str(kwargs["api_version"]),
        connection_timeout=float(kwargs.get("connection_timeout", 20)),
        read_timeout=float(kwargs.get("read_timeout", 60)),
        request_hook=kwargs.get("raw_request_hook"),
        response_hook=kwargs.get("raw_response_hook"),
        trust_env=bool(kwargs.get("use_env_settings", False)),
        retry=RetrySettings(total=int(kwargs["retry_total"])) if "retry_total" in kwargs else None,
    )


class LeanQueueServiceClient(QueueServiceClient):
    _rest: RestTransport

    def get_queue_client(self, queue: Any, **kwargs: Any) -> QueueClient:
        client = super().get_queue_client(queue, **kwargs)
        if kwargs.get("message_encode_policy") or kwargs.get("message_decode_policy") or self.require_encryption:
            return client  # encoded or encrypted messages: the SDK's policies do it
        return LeanQueueClient.adopt(client, self._rest)

    async def close(self) -> None:
        await self._rest.close()
        await super().close()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._rest.close()
        await super().__aexit__(exc_type, exc, tb)


class LeanTableServiceClient(TableServiceClient):
    _rest: RestTransport

    def get_table_client(self, table_name: str, **kwargs: Any) -> TableClient:
        return LeanTableClient.adopt(super().get_table_client(table_name, **kwargs), self._rest)

    async def close(self) -> None:
        await self._rest.close()
        await super().close()

    async def __aexit__(self, *args: Any) -> None:
        await self._rest.close()
        await super().__aexit__(*args)


class LeanBlobServiceClient(BlobServiceClient):
    _rest: RestTransport

    def get_container_client(self, container: Any) -> ContainerClient:
        return LeanContainerClient.adopt(super().get_container_client(container), self._rest)

    async def close(self) -> None:
        await self._rest.close()
        await super().close()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._rest.close()
        await super().__aexit__(exc_type, exc, tb)


def lean_queue_service(endpoint: str, credential: Any, account_name: str | None, **kwargs: Any) -> QueueServiceClient:
    client = LeanQueueServiceClient(endpoint, credential=credential, **kwargs)
    client._rest = _transport(endpoint, "queue", credential, account_name, kwargs)
    return client


def lean_table_service(endpoint: str, credential: Any, account_name: str | None, **kwargs: Any) -> TableServiceClient:
    client = LeanTableServiceClient(endpoint, credential=credential, **kwargs)
    client._rest = _transport(endpoint, "table", credential, account_name, kwargs)
    return client


def lean_blob_service(endpoint: str, credential: Any, account_name: str | None, **kwargs: Any) -> BlobServiceClient:
    client = LeanBlobServiceClient(endpoint, credential=credential, **kwargs)
    client._rest = _transport(endpoint, "blob", credential, account_name, kwargs)
    return client
