"""Run Azure Functions Python apps (azure-functions-durable 1.x) on durable_azstorage.

``durable-azstorage run APP`` or :class:`FunctionsHost`: the app's orchestrators, activities and
entities run on a worker; its HTTP functions, the Durable Functions management API and the
client binding's RPC routes are served over HTTP, as ``func start`` does.
"""

from ._host import FunctionsHost, serve_forever
from ._index import AppIndex, HttpFunction
from ._loader import load_app

__all__ = ["AppIndex", "FunctionsHost", "HttpFunction", "load_app", "serve_forever"]
