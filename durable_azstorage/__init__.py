"""durable_azstorage: Durable Task workflows for Python on Azure Storage (DTAS layout)."""

from __future__ import annotations

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
    "CheckpointConflictError",
    "ConfigurationError",
    "DurableAzStorageError",
    "InstanceAlreadyExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceIdError",
    "InvalidInstanceStateError",
    "InvalidTaskHubNameError",
    "MessageDecodeError",
    "OrchestrationStatus",
    "StorageAccount",
    "UnknownTypeNameError",
    "__version__",
]
