"""The implementation of the task hub clients, and the values they return.

Import the clients from their public homes, as with the Azure SDKs: ``durable_azstorage.TaskHubClient``
(sync) and ``durable_azstorage.aio.TaskHubClient`` (async). This package's face holds what both
return and what the HTTP API and CLI render.
"""

from __future__ import annotations

import warnings
from typing import Any

# Values the clients return.
from ..model.entities import EntityId
from ._async_client import DEFAULT_DEDUPE_STATUSES, InstancePage, PurgeResult
from ._entities import CleanEntityStorageResult, EntityMetadata, EntityPage

# The Durable Functions HTTP payloads (status, history, management URLs), shared by HTTP and CLI.
from ._payloads import (
    BASE_PATH,
    format_time,
    history_payload,
    management_urls,
    parse_json_or_text,
    raw_event_dict,
    status_payload,
)

__all__ = [
    # returned values
    "DEFAULT_DEDUPE_STATUSES",
    "CleanEntityStorageResult",
    "EntityId",
    "EntityMetadata",
    "EntityPage",
    "InstancePage",
    "PurgeResult",
    # HTTP payloads
    "BASE_PATH",
    "format_time",
    "history_payload",
    "management_urls",
    "parse_json_or_text",
    "raw_event_dict",
    "status_payload",
]

_MOVED = {
    "TaskHubClient": ("durable_azstorage.aio", "TaskHubClient"),
    "SyncTaskHubClient": ("durable_azstorage", "TaskHubClient"),
}


def __getattr__(name: str) -> Any:
    """``durable_azstorage.client.TaskHubClient`` (async) and ``SyncTaskHubClient`` still work for one
    release, with a DeprecationWarning naming the new home."""
    if name in _MOVED:
        module, attr = _MOVED[name]
        warnings.warn(
            f"durable_azstorage.client.{name} moved: import {attr} from {module}", DeprecationWarning, stacklevel=2
        )
        import importlib

        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
