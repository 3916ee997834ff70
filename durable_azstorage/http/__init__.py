"""The Durable Functions HTTP management API (``/runtime/webhooks/durabletask``) on aiohttp."""

from ._app import create_app
from ._requests import DEFAULT_MAX_BODY_BYTES, RPC_BASE_PATH, is_loopback
from ._server import serve

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RPC_BASE_PATH", "create_app", "is_loopback", "serve"]
