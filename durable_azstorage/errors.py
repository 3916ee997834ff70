"""One root exception and typed leaves, so callers can catch exactly what they handle.

Every error raised from a storage failure is chained (``raise ... from exc``) so the
Azure SDK's own exception, with its status code and request id, is never lost.
"""

from __future__ import annotations

__all__ = [
    "DurableAzStorageError",
    "ConfigurationError",
    "InvalidTaskHubNameError",
    "InvalidInstanceIdError",
    "MessageDecodeError",
    "UnknownTypeNameError",
    "CheckpointConflictError",
    "InstanceNotFoundError",
    "InstanceAlreadyExistsError",
    "InvalidInstanceStateError",
    "LargePayloadError",
    "TaskHubNotFoundError",
    "FunctionAlreadyRegisteredError",
    "FunctionNotRegisteredError",
]


class DurableAzStorageError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(DurableAzStorageError, ValueError):
    """A setting or connection description is missing or invalid."""


class InvalidTaskHubNameError(ConfigurationError):
    """The task hub name cannot be used for every resource DTAS derives from it."""

    def __init__(self, name: str, reason: str, suggestion: str) -> None:
        self.name = name
        self.reason = reason
        self.suggestion = suggestion
        super().__init__(
            f"invalid task hub name {name!r}: {reason}. Task hub names must match "
            f"^[A-Za-z][A-Za-z0-9]{{2,49}}$ (letters and digits, starting with a letter, "
            f"3-50 characters; at most 45 is safest). Try {suggestion!r}."
        )


class InvalidInstanceIdError(DurableAzStorageError, ValueError):
    """An instance id that cannot be stored (empty, too long, or not encodable)."""


class MessageDecodeError(DurableAzStorageError, ValueError):
    """A queue message or table row that cannot be turned into model objects.

    The worker quarantines such messages instead of retrying them forever.
    """


class UnknownTypeNameError(MessageDecodeError):
    """A ``$type`` outside the whitelist of DurableTask types; never instantiated."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(f"unknown or disallowed $type {type_name!r}")


class CheckpointConflictError(DurableAzStorageError):
    """Another writer changed the instance history (sentinel 409/412): split brain.

    The session that sees it must abandon its work item; nothing it holds may be written.
    """


class InstanceNotFoundError(DurableAzStorageError, LookupError):
    """No orchestration or entity instance with that id exists in the task hub."""


class InstanceAlreadyExistsError(DurableAzStorageError):
    """A start was refused by the reuse policy because the instance id is in use."""


class InvalidInstanceStateError(DurableAzStorageError):
    """The operation does not apply to the instance's current status."""


class LargePayloadError(DurableAzStorageError, ValueError):
    """A payload exceeds what even blob offloading can carry."""


class TaskHubNotFoundError(DurableAzStorageError, LookupError):
    """The task hub's tables or queues do not exist (create it first)."""


class FunctionAlreadyRegisteredError(DurableAzStorageError, ValueError):
    """An orchestrator or activity name was registered twice; names must be unique."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"an {kind} named {name!r} is already registered")


class FunctionNotRegisteredError(DurableAzStorageError, LookupError):
    """History or a message names an orchestrator or activity this worker does not have."""

    def __init__(self, kind: str, name: str, known: list[str] | None = None) -> None:
        self.kind = kind
        self.name = name
        hint = f"; registered: {', '.join(known)}" if known else f"; no {kind} is registered"
        super().__init__(f"no {kind} named {name!r} is registered{hint}")
