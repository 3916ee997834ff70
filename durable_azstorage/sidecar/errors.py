"""Our typed errors as gRPC status codes, each with a one-line message that says what to do.

The SDKs turn these codes into their own exceptions (``ALREADY_EXISTS`` on start,
``NOT_FOUND``, ``DEADLINE_EXCEEDED`` → ``TimeoutError``); anything unexpected is logged here
with its traceback and answered ``INTERNAL`` with one line, never a Python traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from azure.core.exceptions import AzureError

from ..errors import (
    ConfigurationError,
    DurableAzStorageError,
    InstanceAlreadyExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    InvalidInstanceStateError,
    TaskHubNotFoundError,
)
from .broker import UnknownCompletionToken

__all__ = ["map_errors", "map_stream_errors", "status_of"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CODES: tuple[tuple[type[BaseException], Any], ...] = (
    (UnknownCompletionToken, grpc.StatusCode.NOT_FOUND),
    (InstanceNotFoundError, grpc.StatusCode.NOT_FOUND),
    (TaskHubNotFoundError, grpc.StatusCode.NOT_FOUND),
    (InstanceAlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidInstanceStateError, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidInstanceIdError, grpc.StatusCode.INVALID_ARGUMENT),
    (ConfigurationError, grpc.StatusCode.INVALID_ARGUMENT),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
    (DurableAzStorageError, grpc.StatusCode.FAILED_PRECONDITION),
    (AzureError, grpc.StatusCode.UNAVAILABLE),
)


def status_of(exc: BaseException) -> tuple[Any, str]:
    """The status code and one-line message for an exception raised while serving a call."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            text = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else kind.__name__
            if isinstance(exc, AzureError):
                text = f"storage request failed: {text}"
            return code, text
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the sidecar's log"


def _passthrough(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.CancelledError, grpc.aio.AbortError))


def map_errors(
    fn: Callable[[Any, Any, Any], Awaitable[T]],
) -> Callable[[Any, Any, Any], Awaitable[T]]:
    """Decorator for unary RPCs: typed errors → ``context.abort(code, message)``."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Any) -> T:
        try:
            return await fn(self, request, context)
        except BaseException as exc:
            if _passthrough(exc) or not isinstance(exc, Exception):
                raise
            code, message = status_of(exc)
            _log_failure(fn.__name__, code, exc)
            await context.abort(code, message)
            raise  # abort raises; this keeps type checkers honest

    return wrapper


def map_stream_errors(
    fn: Callable[[Any, Any, Any], AsyncIterator[T]],
) -> Callable[[Any, Any, Any], AsyncIterator[T]]:
    """The same for server-streaming RPCs (async generators)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[T]:
        try:
            async for item in fn(self, request, context):
                yield item
        except BaseException as exc:
            if _passthrough(exc) or not isinstance(exc, Exception):
                raise
            code, message = status_of(exc)
            _log_failure(fn.__name__, code, exc)
            await context.abort(code, message)

    return wrapper


def _log_failure(rpc: str, code: Any, exc: BaseException) -> None:
    if code == grpc.StatusCode.INTERNAL:
        log.error("sidecar.rpc_failed", extra={"rpc": rpc}, exc_info=exc)
    else:
        log.info("sidecar.rpc_refused", extra={"rpc": rpc, "code": code.name, "error": str(exc)})
