"""What every route of the management API shares: errors as JSON, the key rule, query parsing.

Every error is a JSON object ``{"Message": ...}`` (ASP.NET ``HttpError`` shape) with a 4xx code; an
unexpected failure is a 500 with a generic message and no stack trace. Without a key only loopback
callers are served; with one, ``code`` or ``x-functions-key`` must match (Functions host rules).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError

from ..aio import TaskHubClient
from ..client import BASE_PATH
from ..errors import (
    DurableAzStorageError,
    InstanceAlreadyExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    InvalidInstanceStateError,
)
from ..model import OrchestrationStatus
from ..storage.faults import StorageFault, classify, retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
CLIENT: web.AppKey[TaskHubClient] = web.AppKey("client", TaskHubClient)
KEY: web.AppKey[str | None] = web.AppKey("key", str)
CONNECTION: web.AppKey[str] = web.AppKey("connection", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message}, status=status)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- middlewares


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(exc.status, str(exc))
    except InstanceNotFoundError as exc:
        return error_response(404, str(exc))
    except InstanceAlreadyExistsError as exc:
        return error_response(409, str(exc))
    except InvalidInstanceStateError as exc:
        return error_response(409, str(exc))
    except (InvalidInstanceIdError, ValueError) as exc:
        return error_response(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except ResourceNotFoundError as exc:
        if not _is_missing_resource(exc):
            return error_response(404, f"not found: {_first_line(exc)}")
        client = request.app[CLIENT]
        return error_response(404, f"task hub {client.task_hub_name} does not exist in account {client.account.label}")
    except Exception as exc:
        storage = storage_error_response(request, exc)
        if storage is not None:
            return storage
        if isinstance(exc, DurableAzStorageError):
            log.warning("http.request_failed", extra={"path": request.path}, exc_info=True)
            return error_response(400, str(exc))
        log.exception("http.unhandled_error", extra={"path": request.path})
        return error_response(500, "Something went wrong while processing your request")


def _is_missing_resource(exc: ResourceNotFoundError) -> bool:
    """A table, queue or container of the hub is missing (not a missing row or blob)."""
    code = str(getattr(exc, "error_code", "") or "")
    return code in ("TableNotFound", "QueueNotFound", "ContainerNotFound") or "TableNotFound" in str(exc)


def storage_error_response(request: web.Request, exc: BaseException) -> web.Response | None:
    """Storage trouble as the HTTP status a client can act on (issue 14), never a bare 500.

    Throttled / unavailable / timed out → 503 with ``Retry-After`` (the service's own when it sent
    one); a missing resource (task hub, table, blob) → 404; a write race (eTag, exists) → 409.
    """
    fault = classify(exc)
    if fault is StorageFault.TRANSIENT:
        seconds = retry_after_seconds(exc)
        log.warning("http.storage_unavailable", extra={"path": request.path, "retry_after": seconds})
        return web.json_response(
            {"Message": f"storage is unavailable or throttling requests ({_first_line(exc)}); retry later"},
            status=503,
            headers={"Retry-After": str(seconds)},
        )
    if fault is StorageFault.NOT_FOUND:
        return error_response(404, f"not found: {_first_line(exc)}")
    if fault is StorageFault.CONFLICT:
        return error_response(409, f"conflict with a concurrent change: {_first_line(exc)}; retry")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    return (text.splitlines() or [type(exc).__name__])[0][:300]


RPC_BASE_PATH = "/durabletask"
"""Where a Functions-style host serves the client binding's ``rpcBaseUrl`` (same handlers)."""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.app[KEY]
    if key is not None and needs_key(request):
        given = request.query.get("code") or request.headers.get("x-functions-key") or ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            return error_response(401, "A valid key is required (code query parameter or x-functions-key header)")
    return await handler(request)


def needs_key(request: web.Request) -> bool:
    """Management routes always; RPC routes unless called from this machine; others never here.

    Other routes (a Functions host's ``/api`` triggers) apply their own auth level.
    """
    path = request.path.lower()
    if path.startswith(RPC_BASE_PATH + "/"):
        return not is_loopback(request.remote or "")
    return path.startswith(BASE_PATH.lower())


# ---------------------------------------------------------------------------- helpers


def client_of(request: web.Request) -> TaskHubClient:
    client = request.app[CLIENT]
    hub = query_ci(request, "taskHub")
    if hub and hub.lower() != client.task_hub_name.lower():
        raise BadRequest(f"this server serves task hub {client.task_hub_name!r}, not {hub!r}")
    return client


def query_ci(request: web.Request, name: str) -> str | None:
    lowered = name.lower()
    for key, value in request.query.items():
        if key.lower() == lowered and value:
            return value
    return None


def flag(request: web.Request, name: str, default: bool) -> bool:
    value = query_ci(request, name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRequest(f"query parameter {name!r} must be true or false")


def time_param(request: web.Request, name: str) -> datetime | None:
    value = query_ci(request, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"query parameter {name!r} is not an ISO 8601 date/time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def statuses_param(request: web.Request) -> list[OrchestrationStatus] | None:
    names = [
        part.strip()
        for key, value in request.query.items()
        if key.lower() == "runtimestatus"
        for part in value.split(",")
        if part.strip()
    ]
    if not names:
        return None
    unknown = [n for n in names if n not in OrchestrationStatus.__members__]
    if unknown:
        allowed = ", ".join(OrchestrationStatus.__members__)
        raise BadRequest(f"unknown runtimeStatus {', '.join(unknown)}; use one of {allowed}")
    return [OrchestrationStatus[n] for n in names]


def positive_float(request: web.Request, name: str) -> float | None:
    value = query_ci(request, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise BadRequest(f"query parameter {name!r} must be a number of seconds") from exc
    if not 0 <= number <= 3600:
        raise BadRequest(f"query parameter {name!r} must be between 0 and 3600 seconds")
    return number


async def json_body(request: web.Request, *, require_json_type: bool) -> str | None:
    """The body as JSON text (validated), or None when empty."""
    if require_json_type and request.content_type != "application/json":
        raise BadRequest("Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("Invalid JSON content") from exc
    return rpc_payload(request, value) or text


def rpc_payload(request: web.Request, value: Any) -> str | None:
    """For RPC calls of the 1.x client: the SDK's JSON text inside the JSON string it posts.

    The 1.x ``DurableOrchestrationClient`` posts ``json.dumps(df_dumps(x))``: JSON text wrapped
    in a JSON string. Storing the inner text keeps inputs, events and entity operations plain
    JSON (readable by every client) while the SDK's ``df_loads`` still gives back ``x``.
    """
    if not isinstance(value, str) or not request.path.lower().startswith(RPC_BASE_PATH + "/"):
        return None
    try:
        json.loads(value)
    except ValueError:
        return None
    return value
