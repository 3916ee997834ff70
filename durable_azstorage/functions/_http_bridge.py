"""aiohttp requests as ``azure.functions.HttpRequest``; whatever a function returns as a response.

The Python worker accepts an ``HttpResponse``, a ``str``/``bytes`` body, or a JSON-able value
for an ``http`` output; we do the same.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from aiohttp import web

__all__ = ["to_aiohttp_response", "to_http_request"]


async def to_http_request(request: web.Request) -> func.HttpRequest:
    body = await request.read()
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        params=dict(request.query),
        route_params=dict(request.match_info),
        body=body,
    )


def to_aiohttp_response(result: Any) -> web.StreamResponse:
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items() if k.lower() != "content-length"}
        response = web.Response(status=result.status_code, body=result.get_body(), headers=headers)
        if "content-type" not in {k.lower() for k in headers} and result.mimetype:
            response.content_type = result.mimetype
            if result.charset:
                response.charset = result.charset
        return response
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes):
        return web.Response(body=result, content_type="application/octet-stream")
    if isinstance(result, str):
        return web.Response(text=result, content_type="text/plain")
    return web.Response(text=json.dumps(result), content_type="application/json")
