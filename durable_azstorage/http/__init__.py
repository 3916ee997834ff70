"""The Durable Functions HTTP management API (``/runtime/webhooks/durabletask``) on aiohttp."""

from ._app import DEFAULT_MAX_BODY_BYTES, create_app, is_loopback
from ._server import serve

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app", "is_loopback", "serve"]
