"""The async API (Azure SDK layout): ``durable_azstorage.aio.TaskHubClient``."""

from __future__ import annotations

from ..client._async_client import InstancePage, PurgeResult, TaskHubClient

__all__ = ["InstancePage", "PurgeResult", "TaskHubClient"]
