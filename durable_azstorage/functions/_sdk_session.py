"""Keep azure-functions-durable's shared HTTP session on the event loop the host runs on.

The 1.x ``DurableOrchestrationClient`` sends its RPC calls through one module-level
``aiohttp.ClientSession`` (``models/utils/http_utils.py`` in 1.5+), created by the first call
and bound to that call's event loop. On Azure a worker process has one loop for its lifetime;
a host started on a *new* loop in the same process (tests with per-test loops, two
``asyncio.run`` calls) would reuse a session whose loop is closed, and every client call would
fail with "Event loop is closed". The host drops such a session when it starts, so the SDK
creates a fresh one on the current loop. Older SDKs (a session per request) have nothing to
drop.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from types import ModuleType

__all__ = ["adopt_running_loop"]

log = logging.getLogger(__name__)


def _http_utils() -> ModuleType | None:
    try:
        return importlib.import_module("azure.durable_functions.models.utils.http_utils")
    except ImportError:
        return None


def adopt_running_loop() -> None:
    """Forget the SDK's shared session (and its lock) if they belong to another event loop."""
    module = _http_utils()
    session = getattr(module, "_client_session", None) if module is not None else None
    if module is None or session is None:
        return
    loop = asyncio.get_running_loop()
    if getattr(session, "_loop", loop) is loop:
        return
    # Its loop has finished (or is another thread's): it can no longer be closed from here.
    module._client_session = None  # type: ignore[attr-defined]
    if hasattr(module, "_session_lock"):
        module._session_lock = asyncio.Lock()  # type: ignore[attr-defined]
    log.debug("functions.sdk_session_replaced")
