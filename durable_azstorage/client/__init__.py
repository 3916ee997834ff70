"""Clients of a task hub: start, inspect and manage instances; no worker needed."""

from ._async_client import DEFAULT_DEDUPE_STATUSES, TaskHubClient

__all__ = ["DEFAULT_DEDUPE_STATUSES", "TaskHubClient"]
