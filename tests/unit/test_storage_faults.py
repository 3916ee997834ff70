"""The one classification of storage trouble the worker (poison) and the HTTP API share."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from durable_azstorage.errors import CheckpointConflictError
from durable_azstorage.storage.faults import StorageFault, classify, is_storage_trouble


def _http(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (_http(503), StorageFault.TRANSIENT),
        (_http(500), StorageFault.TRANSIENT),
        (_http(408), StorageFault.TRANSIENT),
        (_http(429), StorageFault.TRANSIENT),
        (ServiceRequestError("connection refused"), StorageFault.TRANSIENT),
        (asyncio.TimeoutError(), StorageFault.TRANSIENT),
        (ConnectionResetError(), StorageFault.TRANSIENT),
        (_http(412), StorageFault.CONFLICT),
        (CheckpointConflictError("etag"), StorageFault.CONFLICT),
        (ResourceNotFoundError("gone"), StorageFault.NOT_FOUND),
        (_http(400), StorageFault.OTHER),
        (RuntimeError("user code"), StorageFault.OTHER),
        (ValueError("bad payload"), StorageFault.OTHER),
    ],
)
def test_classify(error: BaseException, fault: StorageFault) -> None:
    assert classify(error) is fault


def test_a_wrapped_storage_error_is_still_storage_trouble() -> None:
    try:
        try:
            raise _http(503)
        except HttpResponseError as inner:
            raise RuntimeError("checkpoint failed") from inner
    except RuntimeError as outer:
        assert is_storage_trouble(outer)
    assert not is_storage_trouble(None)
    assert not is_storage_trouble(KeyError("x"))
