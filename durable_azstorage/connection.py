"""The one place that turns a connection description into Azure SDK clients.

Accepted forms (the same as the Functions host): a connection string,
``UseDevelopmentStorage=true``, an account name or service URIs with an azure-identity
credential, and the ``AzureWebJobsStorage`` / ``AzureWebJobsStorage__*`` settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from .azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from .errors import ConfigurationError
from .lean_rest import data_path_from_env, lean_blob_service, lean_queue_service, lean_table_service

__all__ = ["BLOB_QUEUE_API_VERSION", "DEVELOPMENT_STORAGE_CONNECTION_STRING", "TABLE_API_VERSION", "StorageAccount"]

BLOB_QUEUE_API_VERSION = "2026-06-06"
"""Pinned on both data paths: the newest the pinned Azurite accepts without
``--skipApiVersionCheck`` and one every current Azure region serves."""
TABLE_API_VERSION = "2019-02-02"

DEVELOPMENT_STORAGE_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{DEV_ACCOUNT_NAME};"
    f"QueueEndpoint=http://127.0.0.1:10001/{DEV_ACCOUNT_NAME};"
    f"TableEndpoint=http://127.0.0.1:10002/{DEV_ACCOUNT_NAME};"
)

Credential = AzureNamedKeyCredential | AzureSasCredential | AsyncTokenCredential | str | None


def _parse_connection_string(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for segment in text.strip().split(";"):
        if not segment.strip():
            continue
        key, sep, value = segment.partition("=")
        if not sep:
            raise ConfigurationError(f"connection string segment {key.strip()!r} has no '='")
        parts[key.strip().lower()] = value.strip()
    return parts


def _endpoint(parts: Mapping[str, str], service: str) -> str:
    explicit = parts.get(f"{service}endpoint")
    if explicit:
        return explicit.rstrip("/")
    account = parts.get("accountname")
    if not account:
        raise ConfigurationError(f"connection string has neither {service.capitalize()}Endpoint nor AccountName")
    protocol = parts.get("defaultendpointsprotocol", "https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    return f"{protocol}://{account}.{service}.{suffix}"


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def transport_defaults() -> dict[str, Any]:
    """Client options we set unless the caller passes their own.

    * ``read_timeout`` 60 s instead of azure-core's 300 s: a request that hangs (a dropped
      connection, an overloaded emulator) must fail and be retried, not hold an episode's
      messages locked for five minutes.
    * ``use_env_settings`` only when a proxy variable is set: otherwise aiohttp looks up proxy
      settings and ``~/.netrc`` on every request, about 40 % of the client CPU per call here.
    """
    options: dict[str, Any] = {
        "connection_timeout": 20,
        "read_timeout": _env_number(READ_TIMEOUT_ENV, 60.0),
        "use_env_settings": any(os.environ.get(name) for name in _PROXY_VARIABLES),
    }
    retries = os.environ.get(RETRY_TOTAL_ENV)
    if retries:
        options["retry_total"] = int(_env_number(RETRY_TOTAL_ENV, 0))
    return options


READ_TIMEOUT_ENV = "DURABLE_AZSTORAGE_READ_TIMEOUT"
"""Seconds a storage response may take before the request fails (default 60)."""
RETRY_TOTAL_ENV = "DURABLE_AZSTORAGE_RETRY_TOTAL"
"""Client-level retries of a failed storage request (default: the data path's own)."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r}: expected a number") from exc
    if value < 0:
        raise ConfigurationError(f"{name}={raw!r}: must not be negative")
    return value


@dataclass(frozen=True)
class StorageAccount:
    """Endpoints plus one credential; creates fresh async clients on demand.

    Clients are cheap to create and own their HTTP sessions, so callers create them once
    per component and close them (``async with``) on shutdown.
    """

    blob_endpoint: str
    queue_endpoint: str
    table_endpoint: str
    credential: Credential = None
    account_name: str | None = None
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    data_path: str = field(default_factory=data_path_from_env)
    """``lean`` (default): hot operations on the hand-written REST path; ``sdk``: all on the SDK."""

    @classmethod
    def from_connection_string(cls, connection_string: str, **client_kwargs: Any) -> StorageAccount:
        """Parse a storage connection string; ``UseDevelopmentStorage=true`` means local Azurite."""
        if not connection_string or not connection_string.strip():
            raise ConfigurationError("the storage connection string is empty")
        parts = _parse_connection_string(connection_string)
        if parts.get("usedevelopmentstorage", "").lower() == "true":
            parts = _parse_connection_string(DEVELOPMENT_STORAGE_CONNECTION_STRING)
        credential: Credential = None
        account = parts.get("accountname")
        if account and parts.get("accountkey"):
            credential = AzureNamedKeyCredential(account, parts["accountkey"])
        elif parts.get("sharedaccesssignature"):
            credential = AzureSasCredential(parts["sharedaccesssignature"].lstrip("?"))
        if credential is None:
            raise ConfigurationError("the connection string has no AccountKey or SharedAccessSignature")
        return cls(
            blob_endpoint=_endpoint(parts, "blob"),
            queue_endpoint=_endpoint(parts, "queue"),
            table_endpoint=_endpoint(parts, "table"),
            credential=credential,
            account_name=account,
            client_kwargs=dict(client_kwargs),
        )

    @classmethod
    def from_account_name(
        cls, account_name: str, credential: AsyncTokenCredential | None = None, **client_kwargs: Any
    ) -> StorageAccount:
        """Identity-based access; ``DefaultAzureCredential`` unless a credential is given."""
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(
            blob_endpoint=f"https://{account_name}.blob.core.windows.net",
            queue_endpoint=f"https://{account_name}.queue.core.windows.net",
            table_endpoint=f"https://{account_name}.table.core.windows.net",
            credential=credential,
            account_name=account_name,
            client_kwargs=dict(client_kwargs),
        )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, str] | None = None, *, name: str = "AzureWebJobsStorage"
    ) -> StorageAccount:
        """Resolve a Functions-style connection setting from ``settings`` (default: the environment).

        ``{name}`` may hold a connection string; otherwise ``{name}__accountName`` or the
        ``{name}__blobServiceUri`` / ``__queueServiceUri`` / ``__tableServiceUri`` trio selects
        identity-based access (``{name}__clientId`` picks a user-assigned managed identity).
        """
        env = os.environ if settings is None else settings
        value = env.get(name) or env.get(f"CUSTOMCONNSTR_{name}")
        if value:
            return cls.from_connection_string(value)
        prefix = f"{name}__"
        account = env.get(prefix + "accountName")
        uris = {svc: env.get(f"{prefix}{svc}ServiceUri") for svc in ("blob", "queue", "table")}
        if not account and not all(uris.values()):
            raise ConfigurationError(
                f"no storage connection configured: set {name} (a connection string or "
                f"UseDevelopmentStorage=true) or {name}__accountName for identity-based access"
            )
        credential = _identity_credential(env.get(prefix + "clientId"), env.get(prefix + "credential"))
        if account:
            base = cls.from_account_name(account, credential)
            blob, queue, table = base.blob_endpoint, base.queue_endpoint, base.table_endpoint
        else:
            blob, queue, table = (str(uris[s]).rstrip("/") for s in ("blob", "queue", "table"))
        return cls(
            blob_endpoint=uris["blob"] or blob,
            queue_endpoint=uris["queue"] or queue,
            table_endpoint=uris["table"] or table,
            credential=credential,
            account_name=account,
        )

    @property
    def is_local(self) -> bool:
        """Every endpoint is on this machine (Azurite, the storage emulator)."""
        hosts = {urlsplit(e).hostname or "" for e in (self.blob_endpoint, self.queue_endpoint, self.table_endpoint)}
        return all(h in ("localhost", "::1") or h.startswith("127.") for h in hosts)

    @property
    def label(self) -> str:
        """``devstoreaccount1 (http://127.0.0.1:10002/devstoreaccount1)``: for messages that name the account."""
        name = self.account_name or urlsplit(self.table_endpoint).hostname or "?"
        return f"{name} ({self.table_endpoint})"

    def queue_service(self) -> QueueServiceClient:
        kwargs = self._kwargs(BLOB_QUEUE_API_VERSION)
        if self.data_path == "lean":
            return lean_queue_service(self.queue_endpoint, self.credential, self.account_name, **kwargs)
        return QueueServiceClient(self.queue_endpoint, credential=self.credential, **kwargs)

    def table_service(self) -> TableServiceClient:
        kwargs = self._kwargs(TABLE_API_VERSION)
        if self.data_path == "lean":
            return lean_table_service(self.table_endpoint, self.credential, self.account_name, **kwargs)
        return TableServiceClient(self.table_endpoint, credential=self.credential, **kwargs)  # type: ignore[arg-type]

    def blob_service(self) -> BlobServiceClient:
        kwargs = self._kwargs(BLOB_QUEUE_API_VERSION)
        if self.data_path == "lean":
            return lean_blob_service(self.blob_endpoint, self.credential, self.account_name, **kwargs)
        return BlobServiceClient(self.blob_endpoint, credential=self.credential, **kwargs)

    def _kwargs(self, api_version: str) -> dict[str, Any]:
        return {**transport_defaults(), "api_version": api_version, **self.client_kwargs}

    def with_client_kwargs(self, **client_kwargs: Any) -> StorageAccount:
        """A copy whose clients get extra keyword arguments (e.g. ``per_call_policies``)."""
        merged = {**self.client_kwargs, **client_kwargs}
        return replace(self, client_kwargs=merged)

    def with_data_path(self, data_path: str) -> StorageAccount:
        """A copy on the given data path (``lean`` or ``sdk``)."""
        if data_path not in ("lean", "sdk"):
            raise ConfigurationError(f"data path {data_path!r}: use 'lean' or 'sdk'")
        return replace(self, data_path=data_path)


def _identity_credential(client_id: str | None, kind: str | None) -> AsyncTokenCredential:
    if kind and kind.lower() == "managedidentity":
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id)
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
