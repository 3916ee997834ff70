"""Clients of a task hub: start, inspect and manage instances; no worker needed.

``TaskHubClient`` here is the async client (kept for existing imports); the public homes are
``durable_azstorage.TaskHubClient`` (sync) and ``durable_azstorage.aio.TaskHubClient`` (async).
"""

from ..model.entities import EntityId
from ._async_client import DEFAULT_DEDUPE_STATUSES, InstancePage, PurgeResult, TaskHubClient
from ._entities import CleanEntityStorageResult, EntityMetadata, EntityPage
from ._sync_client import TaskHubClient as SyncTaskHubClient

__all__ = [
    "DEFAULT_DEDUPE_STATUSES",
    "CleanEntityStorageResult",
    "EntityId",
    "EntityMetadata",
    "EntityPage",
    "InstancePage",
    "PurgeResult",
    "SyncTaskHubClient",
    "TaskHubClient",
]
