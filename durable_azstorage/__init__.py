"""durable_azstorage: Durable Task workflows for Python on Azure Storage (DTAS layout)."""

from __future__ import annotations

from .client import DEFAULT_DEDUPE_STATUSES, InstancePage, PurgeResult
from .client._sync_client import TaskHubClient
from .connection import StorageAccount
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
from .model import OrchestrationStatus

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DEDUPE_STATUSES",
    "CheckpointConflictError",
    "ConfigurationError",
    "DurableAzStorageError",
    "InstanceAlreadyExistsError",
    "InstanceNotFoundError",
    "InstancePage",
    "InvalidInstanceIdError",
    "InvalidInstanceStateError",
    "InvalidTaskHubNameError",
    "MessageDecodeError",
    "OrchestrationStatus",
    "PurgeResult",
    "StorageAccount",
    "TaskHubClient",
    "UnknownTypeNameError",
    "__version__",
]
