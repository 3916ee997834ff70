"""The Durable Functions HTTP management API on aiohttp (the extension's ``HttpApiHandler``).

Routes, query parameters, JSON field names, status codes and headers are those of the
Durable Functions extension's ``HttpApiHandler``; deviations are listed in docs/http-api.md.
Errors, the key rule and query parsing are shared with the entity routes in :mod:`._requests`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError

from ..aio import TaskHubClient
from ..client import BASE_PATH, management_urls, status_payload
from ..errors import (
    InstanceNotFoundError,
)
from ..model import RUNNING_STATUSES, InstanceQuery, OrchestrationStatus
from ..telemetry.propagation import incoming_trace_context
from ._entities import add_entity_routes
from ._requests import (
    CLIENT,
    CONNECTION,
    DEFAULT_MAX_BODY_BYTES,
    KEY,
    RPC_BASE_PATH,
    BadRequest,
    auth_middleware,
    client_of,
    error_response,
    errors_middleware,
    flag,
    is_loopback,
    json_body,
    positive_float,
    query_ci,
    statuses_param,
    time_param,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "is_loopback"]

log = logging.getLogger(__name__)


def _check_status(request: web.Request, instance_id: str) -> web.Response:
    client = request.app[CLIENT]
    urls = management_urls(
        instance_id,
        str(request.url.origin()),
        task_hub=client.task_hub_name,
        connection=request.app[CONNECTION],
        code=query_ci(request, "code"),
    )
    body = {k: v for k, v in urls.items() if k != "rewindPostUri"}  # as CreateCheckStatusResponse
    return web.json_response(
        body, status=202, headers={"Location": urls["statusQueryGetUri"], "Retry-After": "10"}
    )


async def _maybe_wait(request: web.Request, instance_id: str) -> web.Response:
    """``timeout``/``pollingInterval``: wait for completion, else fall back to 202."""
    timeout = positive_float(request, "timeout")
    positive_float(request, "pollingInterval")
    if timeout is None:
        return _check_status(request, instance_id)
    client = request.app[CLIENT]
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
        raise BadRequest(f"instance {instance_id!r} is {state.runtime_status.name}", status=410)


# ---------------------------------------------------------------------------- handlers


ORCHESTRATORS: web.AppKey[frozenset[str]] = web.AppKey("orchestrators", frozenset)
"""Orchestrator names the host registers (a Functions host knows them); empty = not known here."""


def _check_registered(request: web.Request, name: str) -> None:
    known = request.app.get(ORCHESTRATORS) or frozenset()
    if known and name not in known and name.lower() not in {k.lower() for k in known}:
        raise BadRequest(
            f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function. "
            f"Known orchestrator functions: {', '.join(repr(k) for k in sorted(known))}."
        )


async def start(request: web.Request) -> web.Response:
    client = client_of(request)
    name = request.match_info["functionName"]
    _check_registered(request, name)
    body = await json_body(request, require_json_type=False)
    instance_id = request.match_info.get("instanceId") or None
    with incoming_trace_context(request.headers):  # the caller's traceparent parents create_orchestration
        try:
            instance_id = await client.schedule_new_orchestration(name, raw_input=body, instance_id=instance_id)
        except ResourceNotFoundError:  # the hub's queues or tables are missing: create them, as a host does
            await client.create_task_hub()
            log.warning("http.task_hub_created", extra={"task_hub": client.task_hub_name})
            instance_id = await client.schedule_new_orchestration(name, raw_input=body, instance_id=instance_id)
    return await _maybe_wait(request, instance_id)


async def get_status(request: web.Request) -> web.Response:
    client = client_of(request)
    instance_id = request.match_info["instanceId"]
    show_history = flag(request, "showHistory", False)
    show_history_output = flag(request, "showHistoryOutput", False)
    show_input = flag(request, "showInput", True)
    fail_500 = flag(request, "returnInternalServerErrorOnFailure", False)
    state = await client.get_orchestration_state(instance_id)
    if state is None:
        return error_response(404, f"no orchestration instance with id {instance_id!r}")
    history = await client.get_orchestration_history(instance_id) if show_history else None
    payload = status_payload(
        state, show_input=show_input, history=history, show_history_output=show_history_output
    )
    if state.runtime_status in RUNNING_STATUSES:
        return web.json_response(payload, status=202, headers={"Location": str(request.url), "Retry-After": "5"})
    if state.runtime_status == OrchestrationStatus.Failed and fail_500:
        return web.json_response(payload, status=500)
    return web.json_response(payload, status=200)


async def list_instances(request: web.Request) -> web.Response:
    client = client_of(request)
    top_text = query_ci(request, "top") or "100"
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        raise BadRequest("query parameter 'top' must be an integer between 1 and 1000")
    show_input = flag(request, "showInput", True)
    query = InstanceQuery.of(
        runtime_status=statuses_param(request),
        created_from=time_param(request, "createdTimeFrom"),
        created_to=time_param(request, "createdTimeTo"),
        instance_id_prefix=query_ci(request, "instanceIdPrefix"),
        page_size=int(top_text),
    )
    token = request.headers.get("x-ms-continuation-token") or None
    page = await client.query_instances(query, continuation_token=token)
    body = [status_payload(s, show_input=show_input) for s in page.instances]
    return web.json_response(body, headers={"x-ms-continuation-token": page.continuation_token or ""})


async def purge_one(request: web.Request) -> web.Response:
    result = await client_of(request).purge_instance(request.match_info["instanceId"])
    return web.json_response({"instancesDeleted": result.instances_deleted})


async def purge_many(request: web.Request) -> web.Response:
    client = client_of(request)
    created_from = time_param(request, "createdTimeFrom")
    if created_from is None:
        raise BadRequest("Please provide value for 'createdTimeFrom' parameter.")
    result = await client.purge_instances(
        created_from=created_from,
        created_to=time_param(request, "createdTimeTo"),
        runtime_status=statuses_param(request),
    )
    if result.instances_deleted == 0:
        return error_response(404, "No instances matched the purge filter")
    return web.json_response({"instancesDeleted": result.instances_deleted})


async def raise_event(request: web.Request) -> web.Response:
    client = client_of(request)
    instance_id = request.match_info["instanceId"]
    body = await json_body(request, require_json_type=True)
    await _require_not_terminal(client, instance_id)
    await client.raise_event(instance_id, request.match_info["eventName"], raw_data=body)
    return web.Response(status=202)


def _state_change(
    operation: Callable[[TaskHubClient, str, str | None], Awaitable[object]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """terminate / suspend / resume: 404 unknown, 410 finished, else send it and answer 202."""

    async def handle(request: web.Request) -> web.Response:
        client = client_of(request)
        instance_id = request.match_info["instanceId"]
        await _require_not_terminal(client, instance_id)
        await operation(client, instance_id, query_ci(request, "reason"))
        return web.Response(status=202)

    return handle


terminate = _state_change(lambda c, i, reason: c.terminate(i, reason))
suspend = _state_change(lambda c, i, reason: c.suspend(i, reason))
resume = _state_change(lambda c, i, reason: c.resume(i, reason))


async def rewind(request: web.Request) -> web.Response:
    client = client_of(request)
    instance_id = request.match_info["instanceId"]
    state = await client.get_orchestration_state(instance_id, fetch_payloads=False)
    if state is None:
        return error_response(404, f"no orchestration instance with id {instance_id!r}")
    if state.runtime_status is not None and state.runtime_status.is_terminal and not _is_failed(state.runtime_status):
        return error_response(410, f"instance {instance_id!r} is {state.runtime_status.name}")
    if state.runtime_status != OrchestrationStatus.Failed:
        return error_response(400, f"instance {instance_id!r} must have a status of 'Failed' to be rewound")
    await client.rewind(instance_id, query_ci(request, "reason"))
    return web.Response(status=202)


def _is_failed(status: OrchestrationStatus) -> bool:
    return status == OrchestrationStatus.Failed


async def restart(request: web.Request) -> web.Response:
    client = client_of(request)
    instance_id = request.match_info["instanceId"]
    new_id = flag(request, "restartWithNewInstanceId", True)
    try:
        restarted = await client.restart(instance_id, new_instance_id=new_id)
    except InstanceNotFoundError as exc:
        raise BadRequest("InstanceId does not match a valid orchestration instance.") from exc
    return await _maybe_wait(request, restarted)


# ---------------------------------------------------------------------------- app


def create_app(
    client: TaskHubClient,
    *,
    key: str | None = None,
    connection_name: str = "Storage",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rpc: bool = False,
    orchestrators: frozenset[str] = frozenset(),
) -> web.Application:
    """The management API for one task hub; requests above ``max_body_bytes`` get 413."""

    app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=max_body_bytes)
    app[CLIENT] = client
    app[KEY] = key
    app[CONNECTION] = connection_name
    app[ORCHESTRATORS] = orchestrators
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
