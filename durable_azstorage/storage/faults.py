"""What kind of storage trouble an exception is: the one classification every caller shares.

Why one place: the worker must tell *storage* trouble (throttling, 5xx, time-outs, dropped
connections, eTag races) from a message that fails *on its own*, because only the latter may
ever be quarantined as poison; and the HTTP API must map the same trouble onto 503/404/409.
A wrong answer in one place and not the other is how an instance ends up stuck or a client
retries something that will never work.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator

import aiohttp
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..errors import CheckpointConflictError, InstanceNotFoundError, TaskHubNotFoundError
from .partition_table import LeaseConflictError

__all__ = ["StorageFault", "classify", "is_storage_trouble", "retry_after_seconds"]

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CONFLICT_STATUS = frozenset({409, 412})


class StorageFault(enum.Enum):
    """The part of an exception that decides what to do about it."""

    TRANSIENT = "transient"  # retry later: throttled, unavailable, timed out, connection lost
    CONFLICT = "conflict"  # someone else wrote first (eTag / exists): re-read, then retry
    NOT_FOUND = "not_found"  # the resource is not there
    OTHER = "other"  # not storage trouble: the caller's own failure


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_one(exc: BaseException) -> StorageFault | None:
    if isinstance(exc, (CheckpointConflictError, LeaseConflictError, ResourceExistsError, ResourceModifiedError)):
        return StorageFault.CONFLICT
    if isinstance(exc, (ResourceNotFoundError, InstanceNotFoundError, TaskHubNotFoundError)):
        return StorageFault.NOT_FOUND
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, asyncio.TimeoutError, ConnectionError)):
        return StorageFault.TRANSIENT
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        if status in _TRANSIENT_STATUS:
            return StorageFault.TRANSIENT
        if status in _CONFLICT_STATUS:
            return StorageFault.CONFLICT
        if status == 404:
            return StorageFault.NOT_FOUND
        return None
    if isinstance(exc, aiohttp.ClientError):
        return StorageFault.TRANSIENT  # the transport gave up before the SDK wrapped it
    return None


def classify(exc: BaseException) -> StorageFault:
    """The first storage fault found along the exception's cause/context chain."""
    for link in _chain(exc):
        fault = _classify_one(link)
        if fault is not None:
            return fault
    return StorageFault.OTHER


def is_storage_trouble(exc: BaseException | None) -> bool:
    """True for throttling, unavailability, time-outs, lost connections and eTag races."""
    return exc is not None and classify(exc) in (StorageFault.TRANSIENT, StorageFault.CONFLICT)


def retry_after_seconds(exc: BaseException, default: int = 5) -> int:
    """The service's own ``Retry-After`` when it sent one, else ``default`` (whole seconds)."""
    for link in _chain(exc):
        response = getattr(link, "response", None)
        headers = getattr(response, "headers", None)
        if headers is None:
            continue
        raw = headers.get("Retry-After") or headers.get("retry-after")
        if raw is not None:
            try:
                return max(1, min(int(float(raw)), 600))
            except ValueError:
                continue
    return default
