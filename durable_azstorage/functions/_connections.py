"""Storage connections of trigger and binding ``connection`` properties, resolved as the host does.

The Functions host looks a binding's ``connection`` name up in configuration (app settings,
``local.settings.json`` ``Values`` — already in the environment — and environment variables):

* no name (or an empty one) means ``AzureWebJobsStorage``;
* ``<name>`` holding a connection string, then the legacy ``AzureWebJobs<name>``;
* otherwise the identity-based form ``<name>__serviceUri`` / ``<name>__blobServiceUri`` (blobs),
  ``<name>__queueServiceUri`` (queues), ``<name>__accountName``, with ``<name>__credential``
  and ``<name>__clientId`` choosing the identity.

The host id names this app's folders in ``azure-webjobs-hosts`` (timer status, locks, blob
receipts): ``AzureFunctionsWebHost__hostid`` when set, else the Azure site name
(``WEBSITE_SITE_NAME``), else — like a local ``func start`` — the machine name plus a hash of the
app folder; lower-cased, at most 32 characters, no trailing dash.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..connection import StorageAccount, _identity_credential
from ..errors import ConfigurationError

__all__ = ["DEFAULT_CONNECTION", "Connections", "host_id"]

DEFAULT_CONNECTION = "AzureWebJobsStorage"
_HOST_ID_SETTINGS = ("AzureFunctionsWebHost__hostid", "AzureFunctionsWebHost:hostid")


@dataclass
class Connections:
    """Resolves and caches one :class:`StorageAccount` per connection name."""

    default: StorageAccount
    """Used for ``AzureWebJobsStorage`` when that setting is absent (the host's own account)."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _cache: dict[str, StorageAccount] = field(default_factory=dict)

    def account(self, name: str | None) -> StorageAccount:
        """The account behind connection ``name`` (``None``/empty → ``AzureWebJobsStorage``)."""
        key = (name or DEFAULT_CONNECTION).strip()
        cached = self._cache.get(key.lower())
        if cached is None:
            cached = self._cache[key.lower()] = self._resolve(key)
        return cached

    def _resolve(self, name: str) -> StorageAccount:
        env = self.environ
        for candidate in (name, f"AzureWebJobs{name}"):
            value = env.get(candidate) or env.get(f"CUSTOMCONNSTR_{candidate}")
            if value:
                return StorageAccount.from_connection_string(value)
        identity = _identity_account(name, env)
        if identity is not None:
            return identity
        if name.lower() == DEFAULT_CONNECTION.lower():
            return self.default
        raise ConfigurationError(
            f"connection {name!r} is not configured: set the app setting {name} to a connection string, "
            f"or {name}__serviceUri / {name}__queueServiceUri / {name}__accountName for identity-based access"
        )


def _identity_account(name: str, env: Mapping[str, str]) -> StorageAccount | None:
    prefix = f"{name}__"
    lowered = {k.lower(): v for k, v in env.items() if k.lower().startswith(prefix.lower())}
    if not lowered:
        return None

    def get(key: str) -> str:
        return (lowered.get((prefix + key).lower()) or "").rstrip("/")

    account = get("accountName")
    blob = get("blobServiceUri") or get("serviceUri") or (f"https://{account}.blob.core.windows.net" if account else "")
    queue = get("queueServiceUri") or (f"https://{account}.queue.core.windows.net" if account else "")
    table = get("tableServiceUri") or (f"https://{account}.table.core.windows.net" if account else "")
    if not (blob or queue):
        return None
    credential = _identity_credential(get("clientId") or None, get("credential") or None)
    return StorageAccount(blob_endpoint=blob, queue_endpoint=queue, table_endpoint=table,
                          credential=credential, account_name=account or None)


def host_id(app_root: Path, environ: Mapping[str, str] | None = None) -> str:
    """The host id the Functions host would use for this app (see the module docstring)."""
    env = os.environ if environ is None else environ
    explicit = next((env[k] for k in _HOST_ID_SETTINGS if env.get(k)), None)
    if explicit:
        raw = explicit
    elif env.get("WEBSITE_SITE_NAME"):
        raw = env["WEBSITE_SITE_NAME"]
    else:
        digest = int.from_bytes(hashlib.sha256(str(app_root.resolve()).encode()).digest()[:4], "big")
        raw = f"{socket.gethostname()}-{digest}"
    cleaned = re.sub(r"[^a-z0-9-]", "", raw.lower())[:32].rstrip("-")
    if not cleaned:
        raise ConfigurationError(f"cannot derive a host id from {raw!r}: set AzureFunctionsWebHost__hostid")
    return cleaned
