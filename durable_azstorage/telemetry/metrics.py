"""OpenTelemetry metrics: what a task hub costs (storage transactions) and how far behind it is.

Off by default: until :func:`enable` runs, every ``record_*`` helper returns at its first line and
``opentelemetry`` is never imported — zero overhead. On with the same switch as traces
(:func:`durable_azstorage.telemetry.configure`: ``OTEL_*`` environment variables or ``--otel``).

Instruments (meter ``durable_azstorage``; names are dotted and stable):

- ``durable_azstorage.storage.transactions`` (counter; ``service``, ``operation``): every storage
  request a worker or a client (so also a stand-alone HTTP API or dashboard process) sends,
  classified as :mod:`durable_azstorage.metrics` classifies them for the dashboard and the
  benchmarks (SDK and lean data path alike).
- ``durable_azstorage.work_items`` (counter) and ``durable_azstorage.work_item.duration`` (histogram,
  seconds; ``kind`` = orchestration | entity | activity, ``outcome`` = ok | error): one per
  orchestration episode batch, entity batch and activity work item, dequeue to settle.
- ``durable_azstorage.orchestrations.completed`` (counter; ``status``, ``durabletask.task.name``):
  executions that reached a terminal status or continued as new, counted at their checkpoint.
- ``durable_azstorage.poison_messages`` (counter; ``queue``): messages moved to quarantine.
- ``durable_azstorage.queue.depth`` / ``durable_azstorage.queue.oldest_message_age`` (observable
  gauges, messages / seconds; ``queue``, ``partition``): the owned control queues and the work-item
  queue, sampled by :class:`QueueSampler` — two transactions per queue per sample, at most every
  ``queue_sample_interval`` seconds (30 by default).
- ``durable_azstorage.partitions.owned`` (observable gauge; ``worker_id``, ``task_hub``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..connection import StorageAccount
    from ..model import ExecutionStartedEvent
    from ..runtimes.state import EpisodeOutcome
    from ..storage.task_hub_storage import TaskHubStorage

__all__ = [
    "METER_NAME",
    "QueueSampler",
    "disable",
    "enable",
    "instrument_account",
    "is_enabled",
    "queue_sample_interval",
    "record_episode",
    "record_outcome",
    "record_poison",
    "timed",
]

METER_NAME = "durable_azstorage"
DEFAULT_QUEUE_SAMPLE_INTERVAL = 30.0
log = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Owner(Protocol):
    """What the partition gauge reads of a worker."""

    @property
    def owned_partitions(self) -> list[str]: ...


class _Instruments:
    """The synchronous instruments, and the live sources the observable gauges read."""

    def __init__(self, meter: Any, queue_sample_interval: float) -> None:
        from opentelemetry.metrics import CallbackOptions, Observation

        self.queue_sample_interval = queue_sample_interval
        self.samplers: weakref.WeakSet[QueueSampler] = weakref.WeakSet()
        self.transactions = meter.create_counter(
            "durable_azstorage.storage.transactions", unit="{transaction}", description="Storage requests sent"
        )
        self.work_items = meter.create_counter(
            "durable_azstorage.work_items", unit="{work_item}", description="Work items processed"
        )
        self.duration = meter.create_histogram(
            "durable_azstorage.work_item.duration", unit="s", description="Work item processing time, dequeue to settle"
        )
        self.outcomes = meter.create_counter(
            "durable_azstorage.orchestrations.completed", unit="{orchestration}",
            description="Orchestration executions that ended, by status",
        )
        self.poison = meter.create_counter(
            "durable_azstorage.poison_messages", unit="{message}", description="Messages quarantined as poison"
        )

        def depth(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, a) for s in list(self.samplers) for a, v, _age in s.readings()]

        def age(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, a) for s in list(self.samplers) for a, _d, v in s.readings()]

        def owned(_: CallbackOptions) -> Iterable[Observation]:
            return [s.owned_observation() for s in list(self.samplers)]

        meter.create_observable_gauge(
            "durable_azstorage.queue.depth", [depth], unit="{message}", description="Approximate messages in a queue"
        )
        meter.create_observable_gauge(
            "durable_azstorage.queue.oldest_message_age", [age], unit="s",
            description="Age of the first visible message of a queue",
        )
        meter.create_observable_gauge(
            "durable_azstorage.partitions.owned", [owned], unit="{partition}",
            description="Control-queue partitions this worker owns",
        )


_state: dict[str, _Instruments | None] = {"instruments": None}


def enable(meter_provider: Any | None = None, *, queue_sample_interval: float | None = None) -> None:
    """Start recording through ``meter_provider`` (default: the global one).

    ``queue_sample_interval`` (seconds; default ``DURABLE_AZSTORAGE_OTEL_QUEUE_SAMPLE_SECONDS`` or
    30) bounds how often each worker reads queue depth and age from storage.
    """
    from opentelemetry import metrics

    provider = meter_provider or metrics.get_meter_provider()
    if queue_sample_interval is None:
        queue_sample_interval = float(
            os.environ.get("DURABLE_AZSTORAGE_OTEL_QUEUE_SAMPLE_SECONDS") or DEFAULT_QUEUE_SAMPLE_INTERVAL
        )
    _state["instruments"] = _Instruments(provider.get_meter(METER_NAME), queue_sample_interval)


def disable() -> None:
    _state["instruments"] = None


def is_enabled() -> bool:
    return _state["instruments"] is not None


def queue_sample_interval() -> float:
    instruments = _state["instruments"]
    return DEFAULT_QUEUE_SAMPLE_INTERVAL if instruments is None else instruments.queue_sample_interval


# ---------------------------------------------------------------------------- storage transactions


class _TransactionHook:
    """A ``raw_request_hook`` that counts each request on the OTel counter, after any existing hook."""

    def __init__(self, counter: Any, ports: dict[int, str], existing: Callable[[Any], None] | None) -> None:
        self.counter = counter
        self._ports = ports
        self._existing = existing

    def __call__(self, request: Any) -> None:
        from ..metrics import classify_request

        if self._existing is not None:
            self._existing(request)
        http = request.http_request
        service, operation = classify_request(http.method, http.url, self._ports)
        self.counter.add(1, {"service": service, "operation": operation})


def instrument_account(account: StorageAccount) -> StorageAccount:
    """``account`` whose clients count every request on the transactions counter (itself when off)."""
    instruments = _state["instruments"]
    if instruments is None:
        return account
    existing = account.client_kwargs.get("raw_request_hook")
    if isinstance(existing, _TransactionHook) and existing.counter is instruments.transactions:
        return account  # already counted: a second hook would count every request twice
    ports: dict[int, str] = {}
    for service, endpoint in (
        ("blob", account.blob_endpoint),
        ("queue", account.queue_endpoint),
        ("table", account.table_endpoint),
    ):
        port = urlsplit(endpoint).port
        if port is not None:
            ports[port] = service
    hook = _TransactionHook(instruments.transactions, ports if len(ports) == 3 else {}, existing)
    return account.with_client_kwargs(raw_request_hook=hook)


# ---------------------------------------------------------------------------- work items and outcomes


def timed(kind: str, process: Callable[..., Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
    """``process`` counted and timed as a ``kind`` work item (``process`` itself when metrics are off)."""
    instruments = _state["instruments"]
    if instruments is None:
        return process

    async def run(*args: Any) -> _T:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await process(*args)
            outcome = "ok"
            return result
        finally:
            attributes = {"kind": kind, "outcome": outcome}
            instruments.work_items.add(1, attributes)
            instruments.duration.record(time.perf_counter() - started, attributes)

    return run


def record_outcome(name: str | None, status: str) -> None:
    """An orchestration execution ended (terminal or continued as new) at its checkpoint."""
    instruments = _state["instruments"]
    if instruments is not None:
        instruments.outcomes.add(1, {"status": status, "durabletask.task.name": name or ""})


def record_episode(started: ExecutionStartedEvent | None, outcome: EpisodeOutcome) -> None:
    """A committed episode: counts its execution's outcome if it ended (terminal or continued as new)."""
    if _state["instruments"] is None:
        return
    if outcome.continued_as_new is not None:
        record_outcome(started.name if started else None, "ContinuedAsNew")
    elif outcome.status.is_terminal:
        record_outcome(started.name if started else None, outcome.status.name)


def record_poison(queue_name: str) -> None:
    instruments = _state["instruments"]
    if instruments is not None:
        instruments.poison.add(1, {"queue": queue_name})


# ---------------------------------------------------------------------------- queue depth and age


_Reading = tuple[dict[str, str], int, float]


class QueueSampler:
    """Reads depth and oldest-message age of a worker's queues every ``interval`` seconds.

    Cost: per sample, ``GetQueueMetadata`` + ``PeekMessages`` (two transactions) for each owned
    control queue and the work-item queue — with 4 partitions on one worker and the default 30 s,
    (4 + 1) * 2 * 120 = 1,200 transactions per hour. The gauges report the last sample, so
    collecting more often costs nothing extra.
    """

    def __init__(self, hub: TaskHubStorage, owner: _Owner, worker_id: str, interval: float) -> None:
        self._hub = hub
        self._owner = owner
        self._worker_id = worker_id
        self._interval = interval
        self._readings: list[_Reading] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        instruments = _state["instruments"]
        if instruments is not None:
            instruments.samplers.add(self)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="otel-queue-sampler")

    async def stop(self) -> None:
        instruments = _state["instruments"]
        if instruments is not None:
            instruments.samplers.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def readings(self) -> list[_Reading]:
        return list(self._readings)

    def owned_observation(self) -> Any:
        from opentelemetry.metrics import Observation

        attributes = {"worker_id": self._worker_id, "task_hub": self._hub.names.task_hub}
        return Observation(len(self._owner.owned_partitions), attributes)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # storage trouble: keep the last sample, try again next interval
                log.warning("telemetry.queue_sample_failed", exc_info=True)
            await asyncio.sleep(self._interval)

    async def sample(self) -> None:
        """One reading of every queue this worker watches (owned control queues, work-item queue)."""
        names = self._hub.names
        queues = [*self._owner.owned_partitions, names.work_item_queue]
        readings = await asyncio.gather(*(self._read(q) for q in queues))
        self._readings = list(readings)

    async def _read(self, queue_name: str) -> _Reading:
        queue = self._hub.queue(queue_name)
        depth = await queue.approximate_count()
        inserted = await queue.oldest_inserted_on()
        age = 0.0  # an empty queue (or one whose messages are all invisible) has no backlog age
        if inserted is not None:
            age = max(0.0, (datetime.now(timezone.utc) - inserted).total_seconds())
        partition = queue_name.rsplit("-", 1)[1] if "-control-" in queue_name else "workitems"
        return {"queue": queue_name, "partition": partition}, depth, age
