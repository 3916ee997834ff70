"""The dashboard's routes on an aiohttp app: the page, its static assets and its JSON API.

Actions the management API already has (raise, terminate, suspend, resume, rewind, restart,
purge, entity signals) are called by the page on ``/runtime/webhooks/durabletask/...`` with
the same key; the routes here only add what the management API lacks. Key rule, as there:
when the app was given a key, every ``/dashboard/api`` call needs it (``x-functions-key``
header or ``?code=``); the page and its assets are public (they contain no data).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from azure.core.exceptions import AzureError, ResourceNotFoundError

from ..aio import TaskHubClient
from ..errors import DurableAzStorageError, InstanceNotFoundError, InvalidInstanceStateError
from ..http import is_loopback
from ..metrics import TransactionCounter
from ..model import InstanceQuery, OrchestrationStatus
from ..model.entities import EntityId
from ._doctor import DoctorHealthCheck
from ._instances import instance_detail, query_page
from ._operate import bulk, entity_detail, entity_page, poison_list, poison_resolve
from ._overview import HealthCheck, HubSampler, overview

__all__ = ["DASHBOARD_PATH", "mount_dashboard"]

log = logging.getLogger(__name__)

DASHBOARD_PATH = "/dashboard"
_API = DASHBOARD_PATH + "/api"
_STATIC = Path(str(resources.files(__package__) / "static"))
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAMPLER: web.AppKey[HubSampler] = web.AppKey("dashboard_sampler", HubSampler)


class _Dashboard:
    """The state behind the routes: one client, its sampler, the key, extra health checks."""

    def __init__(
        self, client: TaskHubClient, sampler: HubSampler, key: str | None, checks: Sequence[HealthCheck]
    ) -> None:
        self.client = client
        self.sampler = sampler
        self.key = key
        self.checks = list(checks)

    def guard(self, handler: _Handler) -> _Handler:
        """Key check and one-line JSON errors (``{"Message": ...}``, as the management API)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = _cross_site(request) or (None if self.key is not None else _rebound(request))
            if refused is not None:
                return refused
            if self.key is not None:
                given = request.headers.get("x-functions-key") or request.query.get("code") or ""
                if not hmac.compare_digest(given.encode(), self.key.encode()):
                    return _error(401, "A valid key is required (x-functions-key header or code query parameter)")
            try:
                return await handler(request)
            except InstanceNotFoundError as exc:
                return _error(404, str(exc))
            except ResourceNotFoundError:
                hub = self.client.task_hub_name
                return _error(404, f"task hub {hub!r} does not exist in this storage account yet "
                                   "(start a worker for it, or check --task-hub-name)")
            except InvalidInstanceStateError as exc:
                return _error(409, str(exc))
            except (ValueError, DurableAzStorageError) as exc:
                return _error(400, str(exc))
            except web.HTTPException:
                raise
            except AzureError as exc:  # storage unreachable or refusing: say so, in one line
                log.warning("dashboard.storage_failed", extra={"path": request.path}, exc_info=True)
                first = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
                return _error(503, f"storage request failed: {first}")
            except Exception:
                log.exception("dashboard.unhandled_error", extra={"path": request.path})
                return _error(500, "Something went wrong while processing your request")

        return guarded

    # ------------------------------------------------------------------ handlers

    async def hub(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "taskHub": self.client.task_hub_name,
                "partitionCount": len(self.client.storage.names.control_queues),
                "statuses": list(OrchestrationStatus.__members__),
                "managementApi": "/runtime/webhooks/durabletask",
            }
        )

    async def overview(self, request: web.Request) -> web.Response:
        return web.json_response(await overview(self.client, self.sampler, self.checks))

    async def instances(self, request: web.Request) -> web.Response:
        query = _instance_filter(request)
        top = _int(request, "top", 50, 1, 1000)
        rows, token = await query_page(
            self.client, query, top=top, continuation_token=request.query.get("continuationToken") or None
        )
        return web.json_response({"instances": rows, "continuationToken": token})

    async def instance(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instanceId"]
        body = await instance_detail(self.client, instance_id, datetime.now(timezone.utc))
        if body is None:
            return _error(404, f"no orchestration instance with id {instance_id!r}")
        return web.json_response(body)

    async def bulk(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        ids = body.get("instanceIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not 1 <= len(ids) <= 1000:
            raise ValueError("instanceIds must be a list of 1 to 1000 instance ids")
        reason = body.get("reason")
        results = await bulk(self.client, str(body.get("action")), ids, reason if isinstance(reason, str) else None)
        return web.json_response({"results": results})

    async def poison(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": await poison_list(self.client)})

    def poison_action(self, requeue: bool) -> _Handler:
        async def handle(request: web.Request) -> web.Response:
            body = await _json_object(request)
            queue, message_id = body.get("queue"), body.get("messageId")
            if not isinstance(queue, str) or not isinstance(message_id, str):
                raise ValueError("queue and messageId are required")
            await poison_resolve(self.client, queue, message_id, requeue=requeue)
            return web.json_response({"queue": queue, "messageId": message_id, "requeued": requeue})

        return handle

    async def entities(self, request: web.Request) -> web.Response:
        rows, token = await entity_page(
            self.client,
            name=request.query.get("name") or None,
            top=_int(request, "top", 50, 1, 1000),
            continuation_token=request.query.get("continuationToken") or None,
        )
        return web.json_response({"entities": rows, "continuationToken": token})

    async def entity(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        entity_id = EntityId.of(request.match_info["name"], "" if key == "$" else key)
        body = await entity_detail(self.client, entity_id)
        if body is None:
            return _error(404, f"entity {entity_id} does not exist")
        return web.json_response(body)

    async def clean_entities(self, request: web.Request) -> web.Response:
        result = await self.client.clean_entity_storage()
        return web.json_response(
            {
                "emptyEntitiesRemoved": result.empty_entities_removed,
                "orphanedLocksReleased": result.orphaned_locks_released,
                "continuationToken": result.continuation_token,
            }
        )


# ---------------------------------------------------------------------------- request parsing


def _rebound(request: web.Request) -> web.Response | None:
    """Without a key only loopback names may address the API (no DNS-rebinding of a web page)."""
    host = (urlsplit(f"//{request.host}").hostname or "").strip("[]")
    if is_loopback(host):
        return None
    return _error(403, f"without a key this server answers only on a loopback address, not {request.host!r}")


def _cross_site(request: web.Request) -> web.Response | None:
    """Refuse changes another web site's page could make through the user's browser (CSRF).

    On loopback no key is needed, so a page from elsewhere could POST here. A JSON body makes
    the browser ask first (CORS preflight, which this server never allows), and a foreign
    ``Origin`` is refused outright.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return _error(403, f"cross-origin request from {origin} refused")
    if origin == "null":
        return _error(403, "cross-origin request refused")
    if request.content_type != "application/json":
        return _error(415, "Content-Type must be application/json")
    return None



def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message}, status=status)


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name) or str(default)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"query parameter {name!r} must be an integer between {low} and {high}")
    return int(text)


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"query parameter {name!r} is not an ISO 8601 date/time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _instance_filter(request: web.Request) -> InstanceQuery:
    names = [s for s in request.query.get("status", "").split(",") if s]
    unknown = [n for n in names if n not in OrchestrationStatus.__members__]
    if unknown:
        allowed = ", ".join(OrchestrationStatus.__members__)
        raise ValueError(f"unknown status {', '.join(unknown)}; use one of {allowed}")
    return InstanceQuery.of(
        runtime_status=[OrchestrationStatus[n] for n in names] or None,
        name_prefix=request.query.get("namePrefix") or None,
        instance_id_prefix=request.query.get("instanceIdPrefix") or None,
        created_from=_time(request, "createdFrom"),
        created_to=_time(request, "createdTo"),
        updated_from=_time(request, "updatedFrom"),
        updated_to=_time(request, "updatedTo"),
        exclude_entities=request.query.get("includeEntities") != "true",
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise ValueError("the request body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


# ---------------------------------------------------------------------------- pages


async def _index(request: web.Request) -> web.FileResponse:
    """Every page path serves the same document; the page's router reads the URL (deep links)."""
    return web.FileResponse(_STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(DASHBOARD_PATH + "/")


def mount_dashboard(
    app: web.Application,
    client: TaskHubClient,
    *,
    key: str | None = None,
    counter: TransactionCounter | None = None,
    health_checks: Sequence[HealthCheck] = (),
    sample_interval: float = 30.0,
) -> None:
    """Serve the dashboard at ``/dashboard/`` of ``app`` for ``client``'s task hub.

    ``app`` should also serve the management API (``http.create_app``) with the same ``key``:
    the page calls it for instance and entity actions. ``counter`` is the transaction counter
    of this process's storage clients (see ``counted_account``); ``health_checks`` add
    findings to the overview's health panel.
    """
    sampler = HubSampler(client, counter, interval=sample_interval)
    app[_SAMPLER] = sampler
    app.cleanup_ctx.append(lambda _app: sampler.running())
    doctor = DoctorHealthCheck(client)  # doctor's findings in the health panel (docs/operations.md)
    app.cleanup_ctx.append(lambda _app: doctor.running())
    board = _Dashboard(client, sampler, key, [*health_checks, doctor])
    g = board.guard
    router = app.router
    router.add_get(_API + "/hub", g(board.hub))
    router.add_get(_API + "/overview", g(board.overview))
    router.add_get(_API + "/instances", g(board.instances))
    router.add_post(_API + "/instances/bulk", g(board.bulk))
    router.add_get(_API + "/instances/{instanceId}", g(board.instance))
    router.add_get(_API + "/poison", g(board.poison))
    router.add_post(_API + "/poison/requeue", g(board.poison_action(True)))
    router.add_post(_API + "/poison/drop", g(board.poison_action(False)))
    router.add_get(_API + "/entities", g(board.entities))
    router.add_post(_API + "/entities/clean", g(board.clean_entities))
    router.add_get(_API + "/entities/{name}/{key:.+}", g(board.entity))
    router.add_static(DASHBOARD_PATH + "/static", _STATIC, append_version=False)
    router.add_get(DASHBOARD_PATH, _redirect)
    router.add_get(DASHBOARD_PATH + "/", _index)
    router.add_get(DASHBOARD_PATH + "/{page:(overview|instances|entities|poison).*}", _index)
