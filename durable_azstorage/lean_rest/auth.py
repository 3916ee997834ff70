"""The three credential forms on the lean path: account key, SAS, and an Entra ID token.

``UseDevelopmentStorage=true`` is the Azurite account key. Tokens come from any
azure-identity async credential and are refreshed five minutes before they expire, as
azure-core's ``BearerTokenCredentialPolicy`` does; concurrent requests share one refresh.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from azure.core.credentials import AccessToken, AzureNamedKeyCredential, AzureSasCredential
from azure.core.credentials_async import AsyncTokenCredential

from .signing import SharedKeySigner, blob_queue_string_to_sign, table_string_to_sign

__all__ = ["STORAGE_SCOPE", "Authorizer", "Service", "authorizer_for"]

STORAGE_SCOPE = "https://storage.azure.com/.default"
_REFRESH_MARGIN_SECONDS = 300

Service = Literal["blob", "queue", "table"]


class Authorizer(Protocol):
    """Adds credentials to one request: an ``Authorization`` header or query parameters."""

    async def authorize(
        self, service: Service, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> None: ...


class SharedKeyAuthorizer:
    def __init__(self, account: str, key: str) -> None:
        self._signer = SharedKeySigner(account, key)

    async def authorize(
        self, service: Service, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> None:
        build = table_string_to_sign if service == "table" else blob_queue_string_to_sign
        headers["Authorization"] = self._signer.authorization(build(self._signer.account, method, path, query, headers))


class SasAuthorizer:
    """The SAS token's parameters are appended to every query, exactly as given."""

    def __init__(self, token: str) -> None:
        self._params: Sequence[tuple[str, str]] = [
            (name, value) for name, _, value in (p.partition("=") for p in token.lstrip("?").split("&") if p)
        ]

    async def authorize(
        self, service: Service, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> None:
        query.extend(self._params)


class TokenAuthorizer:
    """``Authorization: Bearer``; one cached token, refreshed ahead of expiry."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def _current(self) -> str:
        token = self._token
        if token is not None and token.expires_on - time.time() > _REFRESH_MARGIN_SECONDS:
            return token.token
        async with self._lock:
            token = self._token
            if token is None or token.expires_on - time.time() <= _REFRESH_MARGIN_SECONDS:
                fetched = self._credential.get_token(STORAGE_SCOPE)
                token = self._token = await fetched if inspect.isawaitable(fetched) else fetched
        return token.token

    async def authorize(
        self, service: Service, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> None:
        headers["Authorization"] = f"Bearer {await self._current()}"


def authorizer_for(credential: object, account_name: str | None) -> Authorizer:
    """The authorizer for a credential the project accepts (see ``StorageAccount``).

    A plain string is an account key, as the SDK clients take it.
    """
    if isinstance(credential, AzureNamedKeyCredential):
        return SharedKeyAuthorizer(credential.named_key.name, credential.named_key.key)
    if isinstance(credential, AzureSasCredential):
        return SasAuthorizer(credential.signature)
    if isinstance(credential, str) and account_name:
        return SharedKeyAuthorizer(account_name, credential)
    if credential is not None and hasattr(credential, "get_token"):
        return TokenAuthorizer(credential)  # type: ignore[arg-type]
    raise ValueError("the lean data path needs an account key, a SAS or a token credential")
