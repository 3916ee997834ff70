"""One aiohttp session per service client: signing, retries, timeouts, counting.

Retries follow what azure-core does, with faster defaults (wave2-facts.md: the storage
SDKs wait 15 s before a first retry): exponential back-off with ±20 % jitter on 408, 429,
500, 502, 503, 504 and on connection or read errors, honouring ``Retry-After``. Every
attempt is reported to ``raw_request_hook`` (and its answer to ``raw_response_hook``) the
way azure-core's ``CustomHookPolicy`` reports them, so
:class:`~durable_azstorage.metrics.TransactionCounter` counts both paths alike.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from yarl import URL

from .auth import Authorizer, Service
from .errors import service_error

__all__ = ["RETRY_STATUSES", "RestResponse", "RestTransport", "RetrySettings", "http_date"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_KEEPALIVE_SECONDS = 4.0

log = logging.getLogger(__name__)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(now: float | None = None) -> str:
    """RFC 1123 date in English whatever the locale (``x-ms-date``)."""
    t = time.gmtime(now)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


_date_cache: tuple[int, str] = (-1, "")


def _current_http_date() -> str:
    """``http_date()`` formatted once per second (dozens of requests share each second)."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, http_date(second))
    return _date_cache[1]


_REQUEST_ID_PREFIX = uuid.uuid4().hex[:20]
_request_numbers = itertools.count(1)


def _request_id() -> str:
    """A unique ``x-ms-client-request-id`` without a random UUID per request: process + sequence."""
    return f"{_REQUEST_ID_PREFIX}-{next(_request_numbers):012d}"


@dataclass(frozen=True)
class RetrySettings:
    """``total`` retries after the first attempt; waits ``initial * base**n`` capped at ``maximum``."""

    total: int = 5
    initial: float = 0.25
    base: float = 2.0
    maximum: float = 10.0
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.maximum)
            except ValueError:
                pass
        wait = min(self.initial * self.base**attempt, self.maximum)
        return wait * (1 - self.jitter + 2 * self.jitter * random.random())  # noqa: S311 - jitter, not crypto


class RestResponse:
    """Status, headers and the whole body (hot responses are small)."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def error(self, error_type: type[HttpResponseError] | None = None) -> HttpResponseError:
        return service_error(self.status, self.reason, self.headers, self.body, error_type=error_type)


class _HookHttpRequest:
    __slots__ = ("headers", "method", "url")

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class _HookRequest:
    """What a ``raw_request_hook`` reads of azure-core's ``PipelineRequest``."""

    __slots__ = ("context", "http_request")

    def __init__(self, http_request: _HookHttpRequest) -> None:
        self.http_request = http_request
        self.context: dict[str, Any] = {}


class _HookHttpResponse:
    """What a ``raw_response_hook`` reads of azure-core's ``HttpResponse``."""

    __slots__ = ("_body", "headers", "reason", "status_code")

    def __init__(self, response: RestResponse) -> None:
        self.status_code = response.status
        self.reason = response.reason
        self.headers = response.headers
        self._body = response.body

    def body(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode(encoding or "utf-8", "replace")


class _HookResponse:
    __slots__ = ("context", "http_request", "http_response")

    def __init__(self, request: _HookHttpRequest, response: RestResponse) -> None:
        self.http_request = request
        self.http_response = _HookHttpResponse(response)
        self.context: dict[str, Any] = {}


class RestTransport:
    """Sends signed requests to one service endpoint (``https://acct.queue.core.windows.net``)."""

    def __init__(
        self,
        endpoint: str,
        service: Service,
        authorizer: Authorizer,
        *,
        api_version: str,
        connection_timeout: float = 20,
        read_timeout: float = 60,
        retry: RetrySettings | None = None,
        request_hook: Callable[[Any], None] | None = None,
        response_hook: Callable[[Any], None] | None = None,
        trust_env: bool = False,
    ) -> None:
        split = urlsplit(endpoint.rstrip("/"))
        self.origin = f"{split.scheme}://{split.netloc}"
        self.base_path = split.path
        self.service = service
        self.api_version = api_version
        self._authorizer = authorizer
        self._retry = retry or RetrySettings()
        self._hook = request_hook
        self._response_hook = response_hook
        self._trust_env = trust_env
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connection_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # Idle connections are dropped after 4 s: Azurite closes them after 5 s, and reusing one
            # the server has just closed fails the request (a retry, and one more counted call).
            connector = aiohttp.TCPConnector(keepalive_timeout=_KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # the storage services set no cookies
                timeout=self._timeout,
                trust_env=self._trust_env,
                skip_auto_headers=("Content-Type",),
            )
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # its event loop is gone (a sync facade's thread ended)
                pass

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RestResponse:
        """``path`` is percent-encoded and relative to the endpoint; retries as documented."""
        attempt = 0
        while True:
            try:
                response = await self._attempt(method, path, query or [], headers or {}, body)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if attempt >= self._retry.total:
                    raise _transport_error(exc, method, self.origin + self.base_path + path) from exc
                _log_retry(method, path, attempt, type(exc).__name__)
                await asyncio.sleep(self._retry.delay(attempt))
            else:
                if response.status not in RETRY_STATUSES or attempt >= self._retry.total:
                    return response
                _log_retry(method, path, attempt, str(response.status))
                await asyncio.sleep(self._retry.delay(attempt, response.headers.get("Retry-After")))
            attempt += 1

    async def _attempt(
        self, method: str, path: str, query: list[tuple[str, str]], extra: Mapping[str, str], body: bytes | None
    ) -> RestResponse:
        headers = {"x-ms-version": self.api_version, "x-ms-date": _current_http_date(), **extra}
        headers["x-ms-client-request-id"] = _request_id()
        if body:
            headers["Content-Length"] = str(len(body))
        elif method in ("PUT", "POST", "DELETE", "PATCH", "MERGE"):
            headers["Content-Length"] = "0"
        if self.service == "table":
            headers["Date"] = headers["x-ms-date"]
        full_path = self.base_path + path
        query = list(query)
        await self._authorizer.authorize(self.service, method, full_path, query, headers)
        target = self.origin + full_path
        if query:
            target += "?" + "&".join(f"{name}={value}" for name, value in query)
        hook_request = _HookHttpRequest(method, target, headers)
        if self._hook is not None:
            self._hook(_HookRequest(hook_request))
        async with self._client().request(method, URL(target, encoded=True), headers=headers, data=body) as raw:
            response = RestResponse(raw.status, raw.reason or "", raw.headers, await raw.read())
        if self._response_hook is not None:
            self._response_hook(_HookResponse(hook_request, response))
        return response


def _log_retry(method: str, path: str, attempt: int, reason: str) -> None:
    extra = {"method": method, "path": path, "attempt": attempt + 1, "reason": reason}
    log.info("storage.request_retried", extra=extra)


def _transport_error(exc: BaseException, method: str, url: str) -> Exception:
    """azure-core's split: could not send (``ServiceRequestError``) vs. no answer (``ServiceResponseError``)."""
    text = f"{method} {url.split('?', 1)[0]}: {type(exc).__name__}: {exc}"
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return ServiceRequestError(text, error=exc)
    return ServiceResponseError(text, error=exc)
