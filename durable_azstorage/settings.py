"""One settings object for the worker, with the DTAS defaults and host.json names.

Defaults follow DurableTask.AzureStorage (``AzureStorageOrchestrationServiceSettings``) except where noted;
``from_host_json`` maps the Durable Functions ``extensions.durableTask`` section onto it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from .app_files import ci_value
from .codec.names import DEFAULT_PARTITION_COUNT, validate_partition_count, validate_task_hub_name
from .errors import ConfigurationError

__all__ = ["DEFAULT_TASK_HUB_NAME", "LOCAL_MAX_QUEUE_POLLING_INTERVAL", "WorkerSettings"]

LOCAL_MAX_QUEUE_POLLING_INTERVAL = timedelta(seconds=2)
"""The polling ceiling when the account is a local emulator and nothing else is configured.

Azurite transactions cost nothing, and on a laptop a new instance started from another process
should begin in about a second, not up to DTAS's 30 s (docs/performance.md, "Idle cost vs start
latency", has the measured trade-off). Real accounts keep the 30 s default."""

DEFAULT_TASK_HUB_NAME = "TestHubName"
"""The one default task hub of the worker, every CLI verb, ``run``, ``serve`` and the demo.

``TestHubName`` is what the Durable Functions extension (2.x+) uses when host.json names no
hub and the app is not in Azure, i.e. what ``func start`` uses on a laptop; so a worker, a
Functions app and ``func durable`` started without a hub name all meet on the same hub."""


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _timespan(value: Any, key: str) -> timedelta:
    """host.json time spans are ``[d.]hh:mm:ss[.fff]`` strings; numbers mean seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ConfigurationError(f"{key}: expected a time span like '00:00:30', got {value!r}")
    text = value.strip()
    days = 0
    head, sep, rest = text.partition(".")
    if sep and ":" in rest and head.isdigit():
        days, text = int(head), rest
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError(text)
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError as exc:
        raise ConfigurationError(f"{key}: expected a time span like '00:00:30', got {value!r}") from exc
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker host can tune. Field names are Pythonic; host.json names map on."""

    task_hub_name: str = DEFAULT_TASK_HUB_NAME
    partition_count: int = DEFAULT_PARTITION_COUNT
    worker_id: str = field(default_factory=_default_worker_id)
    control_queue_batch_size: int = 32
    # DF uses 256 (DTAS 64); a smaller buffer means fewer messages re-appearing after the
    # visibility timeout while they wait in memory, which is the safer default for Python.
    control_queue_buffer_threshold: int = 64
    control_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    work_item_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 100
    max_queue_polling_interval: timedelta = timedelta(seconds=30)
    lease_interval: timedelta = timedelta(seconds=30)
    lease_acquire_interval: timedelta = timedelta(seconds=10)
    lease_claim_duration: timedelta = timedelta(minutes=1)
    # Not in DTAS: how often the Partitions table is *read* (one query). Renewal writes still
    # happen every lease_acquire_interval; reading more often is what lets a graceful stop hand
    # partitions over in about two seconds instead of up to ten.
    partition_poll_interval: timedelta = timedelta(seconds=2)
    drain_timeout: timedelta = timedelta(seconds=60)
    # Not in DTAS: messages this worker sends to a queue it consumes itself (its own control
    # queues, the work-item queue) are put with the consumer's visibility timeout and handed
    # over in memory: one Get Messages call and the polling delay saved per message; after a
    # crash they reappear when that timeout ends, as received messages do.
    local_dispatch: bool = True
    history_cache_size: int = 1000
    # Functions 1.x apps: suspended orchestrators (the SDK's executor and generator) kept between
    # episodes, least recently used evicted; 0 replays the whole history every episode, as the
    # extension does. host.json ``extendedSessionsEnabled: false`` sets 0.
    orchestrator_cache_size: int = 1000
    # Not in DTAS (it retries poison messages forever): after this many dequeues a message
    # is moved to the {Hub}Poison table where `durable-azstorage poison` can inspect it.
    poison_dequeue_threshold: int = 20
    max_timer_interval: timedelta = timedelta(days=3)
    max_short_timer: timedelta = timedelta(days=6)
    # host.json maxEntityOperationBatchSize (DTAS default; DF on Consumption uses 50 too).
    max_entity_operation_batch_size: int = 50
    # host.json entityMessageReorderWindowInMinutes: how long the message sorter remembers senders.
    entity_message_reorder_window: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        validate_task_hub_name(self.task_hub_name)
        validate_partition_count(self.partition_count)
        if self.max_entity_operation_batch_size < 1:
            raise ConfigurationError("max_entity_operation_batch_size must be at least 1")
        if not 1 <= self.control_queue_batch_size <= 32:
            raise ConfigurationError("control_queue_batch_size must be 1..32 (the queue service maximum)")
        for name in ("max_concurrent_activities", "max_concurrent_orchestrations", "poison_dequeue_threshold"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.lease_interval <= timedelta(0) or self.lease_acquire_interval <= timedelta(0):
            raise ConfigurationError("lease intervals must be positive")
        if self.orchestrator_cache_size < 0:
            raise ConfigurationError("orchestrator_cache_size must be 0 (off) or more")

    def with_changes(self, **changes: Any) -> WorkerSettings:
        return replace(self, **changes)

    @classmethod
    def from_host_json(
        cls, host_json: Mapping[str, Any], *, local_account: bool = False, **overrides: Any
    ) -> WorkerSettings:
        """Read ``extensions.durableTask`` of a Functions host.json (v2 names, case-insensitive).

        ``local_account``: the account is an emulator; an unset polling ceiling becomes
        :data:`LOCAL_MAX_QUEUE_POLLING_INTERVAL`.
        """
        section = _ci(_ci(host_json, "extensions"), "durableTask")
        storage = _ci(section, "storageProvider")
        values: dict[str, Any] = {}
        hub = ci_value(section, "hubName")
        if hub is not None:
            values["task_hub_name"] = str(hub)
        for key, attr in (
            ("partitionCount", "partition_count"),
            ("controlQueueBatchSize", "control_queue_batch_size"),
            ("controlQueueBufferThreshold", "control_queue_buffer_threshold"),
        ):
            raw = ci_value(storage, key)
            if raw is not None:
                values[attr] = int(raw)
        for key, attr in (("maxEntityOperationBatchSize", "max_entity_operation_batch_size"),):
            raw = ci_value(section, key) if ci_value(section, key) is not None else ci_value(storage, key)
            if raw is not None:
                values[attr] = int(raw)
        if str(ci_value(section, "extendedSessionsEnabled")).lower() == "false":
            values["orchestrator_cache_size"] = 0
        raw_window = ci_value(section, "entityMessageReorderWindowInMinutes")
        if raw_window is not None:
            values["entity_message_reorder_window"] = timedelta(minutes=float(raw_window))
        for key, attr in (
            ("maxQueuePollingInterval", "max_queue_polling_interval"),
            ("controlQueueVisibilityTimeout", "control_queue_visibility_timeout"),
            ("workItemQueueVisibilityTimeout", "work_item_queue_visibility_timeout"),
        ):
            raw = ci_value(storage, key)
            if raw is not None:
                values[attr] = _timespan(raw, key)
        for key, attr in (
            ("maxConcurrentActivityFunctions", "max_concurrent_activities"),
            ("maxConcurrentOrchestratorFunctions", "max_concurrent_orchestrations"),
        ):
            raw = ci_value(section, key)
            if raw is not None:
                values[attr] = int(raw)
        values.update(overrides)
        if local_account:
            values.setdefault("max_queue_polling_interval", LOCAL_MAX_QUEUE_POLLING_INTERVAL)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigurationError(f"unknown worker settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def _ci(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = ci_value(mapping, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"host.json: {key} must be an object")
    return value


