"""The async API, laid out as the Azure SDKs do: ``from durable_azstorage.aio import TaskHubClient``."""

from __future__ import annotations

from ..client import InstancePage, PurgeResult
from ..client._async_client import TaskHubClient
from ..model import InstanceQuery

__all__ = ["InstancePage", "InstanceQuery", "PurgeResult", "TaskHubClient"]
