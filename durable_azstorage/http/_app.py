"""The Durable Functions HTTP management API on aiohttp (ecosystem.md §1).

Routes, query parameters, JSON field names, status codes and headers are those of the
Durable Functions extension's ``HttpApiHandler``; deviations are listed in docs/http-api.md.
Every error is a JSON object ``{"Message": ...}`` (ASP.NET ``HttpError`` shape) with a 4xx
code; an unexpected failure is a 500 with a generic message and no stack trace.
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

from ..client._async_client import TaskHubClient
from ..client._payloads import BASE_PATH, management_urls, status_payload
from ..errors import (
    DurableAzStorageError,
    InstanceAlreadyExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    InvalidInstanceStateError,
)
from ..model import OrchestrationStatus

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "is_loopback"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_CLIENT: web.AppKey[TaskHubClient] = web.AppKey("client", TaskHubClient)
_KEY: web.AppKey[str | None] = web.AppKey("key", str)
_CONNECTION: web.AppKey[str] = web.AppKey("connection", str)
_RUNNING = frozenset(
    {
        OrchestrationStatus.Running,
        OrchestrationStatus.Pending,
        OrchestrationStatus.ContinuedAsNew,
        OrchestrationStatus.Suspended,
    }
)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message}, status=status)


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- middlewares


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _BadRequest as exc:
        return _error(exc.status, str(exc))
    except InstanceNotFoundError as exc:
        return _error(404, str(exc))
    except InstanceAlreadyExistsError as exc:
        return _error(409, str(exc))
    except InvalidInstanceStateError as exc:
        return _error(409, str(exc))
    except (InvalidInstanceIdError, ValueError) as exc:
        return _error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except DurableAzStorageError as exc:
        log.warning("http.request_failed", extra={"path": request.path}, exc_info=True)
        return _error(400, str(exc))
    except Exception:
        log.exception("http.unhandled_error", extra={"path": request.path})
        return _error(500, "Something went wrong while processing your request")


RPC_BASE_PATH = "/durabletask"
"""Where a Functions-style host serves the client binding's ``rpcBaseUrl`` (same handlers)."""


@web.middleware
async def _auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
    key = request.app[_KEY]
    if key is not None and _needs_key(request):
        given = request.query.get("code") or request.headers.get("x-functions-key") or ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            return _error(401, "A valid key is required (code query parameter or x-functions-key header)")
    return await handler(request)


def _needs_key(request: web.Request) -> bool:
    """Management routes always; RPC routes unless called from this machine; others never here.

    Other routes (a Functions host's ``/api`` triggers) apply their own auth level.
    """
    path = request.path.lower()
    if path.startswith(RPC_BASE_PATH + "/"):
        return not is_loopback(request.remote or "")
    return path.startswith(BASE_PATH.lower())


# ---------------------------------------------------------------------------- helpers


def _client(request: web.Request) -> TaskHubClient:
    client = request.app[_CLIENT]
    hub = _query_ci(request, "taskHub")
    if hub and hub.lower() != client.task_hub_name.lower():
        raise _BadRequest(f"this server serves task hub {client.task_hub_name!r}, not {hub!r}")
    return client


def _query_ci(request: web.Request, name: str) -> str | None:
    lowered = name.lower()
    for key, value in request.query.items():
        if key.lower() == lowered and value:
            return value
    return None


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = _query_ci(request, name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _BadRequest(f"query parameter {name!r} must be true or false")


def _time(request: web.Request, name: str) -> datetime | None:
    value = _query_ci(request, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise _BadRequest(f"query parameter {name!r} is not an ISO 8601 date/time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _statuses(request: web.Request) -> list[OrchestrationStatus] | None:
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
        raise _BadRequest(f"unknown runtimeStatus {', '.join(unknown)}; use one of {allowed}")
    return [OrchestrationStatus[n] for n in names]


def _positive_float(request: web.Request, name: str) -> float | None:
    value = _query_ci(request, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise _BadRequest(f"query parameter {name!r} must be a number of seconds") from exc
    if not 0 <= number <= 3600:
        raise _BadRequest(f"query parameter {name!r} must be between 0 and 3600 seconds")
    return number


async def _json_body(request: web.Request, *, require_json_type: bool) -> str | None:
    """The body as JSON text (validated), or None when empty."""
    if require_json_type and request.content_type != "application/json":
        raise _BadRequest("Content-Type must be application/json")
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadRequest("Invalid JSON content") from exc
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


def _check_status(request: web.Request, instance_id: str) -> web.Response:
    client = request.app[_CLIENT]
    urls = management_urls(
        instance_id,
        str(request.url.origin()),
        task_hub=client.task_hub_name,
        connection=request.app[_CONNECTION],
        code=_query_ci(request, "code"),
    )
    body = {k: v for k, v in urls.items() if k != "rewindPostUri"}  # as CreateCheckStatusResponse
    return web.json_response(
        body, status=202, headers={"Location": urls["statusQueryGetUri"], "Retry-After": "10"}
    )


async def _maybe_wait(request: web.Request, instance_id: str) -> web.Response:
    """``timeout``/``pollingInterval``: wait for completion, else fall back to 202."""
    timeout = _positive_float(request, "timeout")
    _positive_float(request, "pollingInterval")
    if timeout is None:
        return _check_status(request, instance_id)
    client = request.app[_CLIENT]
    try:
        state = await client.wait_for_completion(instance_id, timeout=timeout)
    except TimeoutError:
        return _check_status(request, instance_id)
    return web.json_response(status_payload(state)["output"], status=200)


async def _require_not_terminal(client: TaskHubClient, instance_id: str) -> None:
    state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
    if state is None:
        raise InstanceNotFoundError(f"no orchestration instance with id {instance_id!r}")
    if state.runtime_status is not None and state.runtime_status.is_terminal:
        raise _BadRequest(f"instance {instance_id!r} is {state.runtime_status.name}", status=410)


# ---------------------------------------------------------------------------- handlers


async def start(request: web.Request) -> web.Response:
    client = _client(request)
    name = request.match_info["functionName"]
    body = await _json_body(request, require_json_type=False)
    instance_id = await client.schedule_new_orchestration(
        name, raw_input=body, instance_id=request.match_info.get("instanceId") or None
    )
    return await _maybe_wait(request, instance_id)


async def get_status(request: web.Request) -> web.Response:
    client = _client(request)
    instance_id = request.match_info["instanceId"]
    show_history = _flag(request, "showHistory", False)
    show_history_output = _flag(request, "showHistoryOutput", False)
    show_input = _flag(request, "showInput", True)
    fail_500 = _flag(request, "returnInternalServerErrorOnFailure", False)
    state = await client.get_orchestration_state(instance_id)
    if state is None:
        return _error(404, f"no orchestration instance with id {instance_id!r}")
    history = await client.get_orchestration_history(instance_id) if show_history else None
    payload = status_payload(
        state, show_input=show_input, history=history, show_history_output=show_history_output
    )
    if state.runtime_status in _RUNNING:
        return web.json_response(payload, status=202, headers={"Location": str(request.url), "Retry-After": "5"})
    if state.runtime_status == OrchestrationStatus.Failed and fail_500:
        return web.json_response(payload, status=500)
    return web.json_response(payload, status=200)


async def list_instances(request: web.Request) -> web.Response:
    client = _client(request)
    top_text = _query_ci(request, "top") or "100"
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        raise _BadRequest("query parameter 'top' must be an integer between 1 and 1000")
    show_input = _flag(request, "showInput", True)
    page = await client.query_instances(
        runtime_status=_statuses(request),
        created_from=_time(request, "createdTimeFrom"),
        created_to=_time(request, "createdTimeTo"),
        instance_id_prefix=_query_ci(request, "instanceIdPrefix"),
        page_size=int(top_text),
        continuation_token=request.headers.get("x-ms-continuation-token") or None,
        fetch_payloads=True,
    )
    body = [status_payload(s, show_input=show_input) for s in page.instances]
    return web.json_response(body, headers={"x-ms-continuation-token": page.continuation_token or ""})


async def purge_one(request: web.Request) -> web.Response:
    result = await _client(request).purge_instance(request.match_info["instanceId"])
    return web.json_response({"instancesDeleted": result.instances_deleted})


async def purge_many(request: web.Request) -> web.Response:
    client = _client(request)
    created_from = _time(request, "createdTimeFrom")
    if created_from is None:
        raise _BadRequest("Please provide value for 'createdTimeFrom' parameter.")
    result = await client.purge_instances(
        created_from=created_from, created_to=_time(request, "createdTimeTo"), runtime_status=_statuses(request)
    )
    if result.instances_deleted == 0:
        return _error(404, "No instances matched the purge filter")
    return web.json_response({"instancesDeleted": result.instances_deleted})


async def raise_event(request: web.Request) -> web.Response:
    client = _client(request)
    instance_id = request.match_info["instanceId"]
    body = await _json_body(request, require_json_type=True)
    await _require_not_terminal(client, instance_id)
    await client.raise_event(instance_id, request.match_info["eventName"], raw_data=body)
    return web.Response(status=202)


def _state_change(
    operation: Callable[[TaskHubClient, str, str | None], Awaitable[object]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """terminate / suspend / resume: 404 unknown, 410 finished, else send it and answer 202."""

    async def handle(request: web.Request) -> web.Response:
        client = _client(request)
        instance_id = request.match_info["instanceId"]
        await _require_not_terminal(client, instance_id)
        await operation(client, instance_id, _query_ci(request, "reason"))
        return web.Response(status=202)

    return handle


terminate = _state_change(lambda c, i, reason: c.terminate(i, reason))
suspend = _state_change(lambda c, i, reason: c.suspend(i, reason))
resume = _state_change(lambda c, i, reason: c.resume(i, reason))


async def rewind(request: web.Request) -> web.Response:
    client = _client(request)
    instance_id = request.match_info["instanceId"]
    state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
    if state is None:
        return _error(404, f"no orchestration instance with id {instance_id!r}")
    if state.runtime_status is not None and state.runtime_status.is_terminal and not _is_failed(state.runtime_status):
        return _error(410, f"instance {instance_id!r} is {state.runtime_status.name}")
    if state.runtime_status != OrchestrationStatus.Failed:
        return _error(400, f"instance {instance_id!r} must have a status of 'Failed' to be rewound")
    await client.rewind(instance_id, _query_ci(request, "reason"))
    return web.Response(status=202)


def _is_failed(status: OrchestrationStatus) -> bool:
    return status == OrchestrationStatus.Failed


async def restart(request: web.Request) -> web.Response:
    client = _client(request)
    instance_id = request.match_info["instanceId"]
    new_id = _flag(request, "restartWithNewInstanceId", True)
    try:
        restarted = await client.restart(instance_id, new_instance_id=new_id)
    except InstanceNotFoundError as exc:
        raise _BadRequest("InstanceId does not match a valid orchestration instance.") from exc
    return await _maybe_wait(request, restarted)


# ---------------------------------------------------------------------------- app


def create_app(
    client: TaskHubClient,
    *,
    key: str | None = None,
    connection_name: str = "Storage",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rpc: bool = False,
) -> web.Application:
    """The management API for one task hub; requests above ``max_body_bytes`` get 413."""
    from ._entities import add_entity_routes  # the entity handlers build on this module's helpers

    app = web.Application(middlewares=[_errors, _auth], client_max_size=max_body_bytes)
    app[_CLIENT] = client
    app[_KEY] = key
    app[_CONNECTION] = connection_name
    bases = {BASE_PATH, BASE_PATH.replace("durabletask", "durableTask")}
    if rpc:  # the client binding's rpcBaseUrl; loopback callers need no key (the in-process client)
        bases.add(RPC_BASE_PATH)
    for base in bases:
        instance = base + "/instances/{instanceId}"
        app.router.add_post(base + "/orchestrators/{functionName}", start)
        app.router.add_post(base + "/orchestrators/{functionName}/{instanceId}", start)
        app.router.add_get(base + "/instances", list_instances)
        app.router.add_get(base + "/instances/", list_instances)
        app.router.add_delete(base + "/instances", purge_many)
        app.router.add_delete(base + "/instances/", purge_many)
        app.router.add_get(instance, get_status)
        app.router.add_delete(instance, purge_one)
        app.router.add_post(instance + "/raiseEvent/{eventName}", raise_event)
        app.router.add_post(instance + "/terminate", terminate)
        app.router.add_post(instance + "/suspend", suspend)
        app.router.add_post(instance + "/resume", resume)
        app.router.add_post(instance + "/rewind", rewind)
        app.router.add_post(instance + "/restart", restart)
        add_entity_routes(app, base)
    return app
