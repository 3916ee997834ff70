"""Durable Functions entity routes (``HttpApiHandler``): ``/entities/{name}[/{key}]``.

* ``POST /entities/{name}/{key}?op=X`` signals (body: JSON when ``application/json``, else
  the raw text as a JSON string), ``DELETE`` signals ``delete``; both answer 202, empty body.
* ``GET /entities/{name}/{key}`` answers 200 with the state JSON, 404 when it has none; the key
  ``$`` stands for the empty key.
* ``GET /entities[/{name}]`` lists: ``lastOperationTimeFrom``/``To``, ``fetchState`` (default
  false), ``top`` (default 100) and the ``x-ms-continuation-token`` header both ways; items are
  ``{"entityId": {"name", "key"}, "lastOperationTime", "state"}``.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..client import EntityMetadata
from ..codec.netjson import format_datetime
from ..model.entities import EntityId
from ._requests import BadRequest, client_of, error_response, flag, query_ci, rpc_payload, time_param

__all__ = ["add_entity_routes"]

_EMPTY_KEY = "$"


def _entity_id(request: web.Request) -> EntityId:
    name = request.match_info.get("entityName", "")
    key = request.match_info.get("entityKey", "")
    if not name:
        raise BadRequest("an entity name is required")
    return EntityId.of(name, "" if key == _EMPTY_KEY else key)


async def signal(request: web.Request) -> web.Response:
    client = client_of(request)
    entity_id = _entity_id(request)
    operation = "delete" if request.method == "DELETE" else (request.query.get("op") or "")
    raw = await request.read()
    payload: str | None = None
    if raw:
        text = raw.decode("utf-8", errors="replace")
        if request.content_type.lower() == "application/json":
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise BadRequest(f"Could not parse JSON content: {exc}") from exc
            payload = rpc_payload(request, value) or json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        else:
            payload = json.dumps(text, ensure_ascii=False)
    await client.signal_entity(entity_id, operation, raw_input=payload)
    return web.Response(status=202)


async def get_entity(request: web.Request) -> web.Response:
    client = client_of(request)
    entity_id = _entity_id(request)
    metadata = await client.get_entity(entity_id)
    if metadata is None or metadata.state is None:
        return error_response(404, f"entity {entity_id} does not exist")
    return web.Response(status=200, text=metadata.state, content_type="application/json")


def _status_item(m: EntityMetadata) -> dict[str, object]:
    return {
        "entityId": {"name": m.entity_id.name, "key": m.entity_id.key},
        "lastOperationTime": format_datetime(m.last_operation_time) if m.last_operation_time else None,
        "state": m.state_value(),
    }


async def list_entities(request: web.Request) -> web.Response:
    client = client_of(request)
    top_text = query_ci(request, "top") or "100"
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        raise BadRequest("query parameter 'top' must be an integer between 1 and 1000")
    page = await client.list_entities(
        name=request.match_info.get("entityName") or None,
        last_operation_from=time_param(request, "lastOperationTimeFrom"),
        last_operation_to=time_param(request, "lastOperationTimeTo"),
        include_state=flag(request, "fetchState", False),
        page_size=int(top_text),
        continuation_token=request.headers.get("x-ms-continuation-token") or None,
    )
    body = [_status_item(m) for m in page.entities]
    return web.json_response(body, headers={"x-ms-continuation-token": page.continuation_token or ""})


def add_entity_routes(app: web.Application, base: str) -> None:
    entities = base + "/entities"
    app.router.add_get(entities, list_entities)
    app.router.add_get(entities + "/", list_entities)
    app.router.add_get(entities + "/{entityName}", list_entities)
    app.router.add_get(entities + "/{entityName}/", list_entities)
    app.router.add_get(entities + "/{entityName}/{entityKey}", get_entity)
    app.router.add_post(entities + "/{entityName}/{entityKey}", signal)
    app.router.add_delete(entities + "/{entityName}/{entityKey}", signal)
