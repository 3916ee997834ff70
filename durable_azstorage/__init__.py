"""durable_azstorage: Durable Task workflows for Python on Azure Storage (DTAS layout).

The sync client lives here and the async one in :mod:`durable_azstorage.aio`, as in the Azure SDKs;
workers are in :mod:`durable_azstorage.worker`, Functions apps in :mod:`durable_azstorage.functions`.
"""

from __future__ import annotations

# Clients and what they take and return.
from .client import DEFAULT_DEDUPE_STATUSES, InstancePage, PurgeResult
from .client._sync_client import TaskHubClient
from .connection import StorageAccount

# Errors: every one a DurableAzStorageError, so one except clause catches the project's failures.
from .errors import (
    CheckpointConflictError,
    ConfigurationError,
    DurableAzStorageError,
    InstanceAlreadyExistsError,
    InstanceNotFoundError,
    InvalidInstanceIdError,
    InvalidInstanceStateError,
    InvalidTaskHubNameError,
    MessageDecodeError,
    UnknownTypeNameError,
)
from .model import InstanceQuery, OrchestrationStatus

__version__ = "0.1.0"

__all__ = [
    # clients
    "TaskHubClient",
    "StorageAccount",
    "InstanceQuery",
    "InstancePage",
    "PurgeResult",
    "OrchestrationStatus",
    "DEFAULT_DEDUPE_STATUSES",
    # errors
    "DurableAzStorageError",
    "CheckpointConflictError",
    "ConfigurationError",
    "InstanceAlreadyExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceIdError",
    "InvalidInstanceStateError",
    "InvalidTaskHubNameError",
    "MessageDecodeError",
    "UnknownTypeNameError",
    "__version__",
]
