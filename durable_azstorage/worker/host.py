"""The worker host: wires storage, partitions, pumps and dispatchers; starts and stops them.

Graceful shutdown releases every owned partition at once (DTAS drains then releases), so
another host takes over in seconds instead of waiting for the lease to expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from ..codec.names import TaskHubNames
from ..connection import StorageAccount
from ..errors import ConfigurationError
from ..model.entities import is_entity_instance
from ..runtimes.base import ActivityRuntime, OrchestrationRuntime, Registry
from ..runtimes.entities import EntityRuntime
from ..settings import WorkerSettings
from ..storage import TaskHubResources, TaskHubStorage
from ..storage.faults import is_storage_trouble
from ..storage.queues import QueueMessage
from ..telemetry import metrics as otel_metrics
from .activities import ActivityProcessor
from .control_pump import ControlQueuePump, instance_of
from .dispatcher import Dispatcher
from .entities import EntityProcessor, EntitySettings
from .episode_clock import Parked
from .history_cache import HistoryCache
from .in_flight import InFlightMessages
from .orchestrations import OrchestrationProcessor
from .partition_manager import PartitionManager
from .poison import FailureCounts, PoisonHandler
from .sessions import InstanceBatch, SessionManager

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    """Runs orchestrations and activities of one task hub until stopped.

    Register durabletask-SDK functions with :meth:`add_orchestrator` / :meth:`add_activity`
    (or pass other runtimes), then ``async with worker:`` or ``await worker.start()``.
    """

    def __init__(
        self,
        account: StorageAccount,
        settings: WorkerSettings | None = None,
        *,
        orchestration_runtime: OrchestrationRuntime | None = None,
        activity_runtime: ActivityRuntime | None = None,
        entity_runtime: EntityRuntime | None = None,
        **setting_overrides: Any,
    ) -> None:
        base = settings or WorkerSettings()
        self.settings = base.with_changes(**setting_overrides) if setting_overrides else base
        self.account = account
        self.registry = Registry()
        self._orchestration_runtime = orchestration_runtime
        self._activity_runtime = activity_runtime
        self._entity_runtime = entity_runtime
        self._hub: TaskHubStorage | None = None
        self._pumps: dict[str, ControlQueuePump] = {}
        self._sessions: SessionManager[QueueMessage] = SessionManager(
            instance_of, capacity=self.settings.control_queue_buffer_threshold
        )
        self._cache = HistoryCache(self.settings.history_cache_size)
        self._dispatchers: list[Dispatcher[Any]] = []
        self._partitions: PartitionManager | None = None
        self._activities: ActivityProcessor | None = None
        self._in_flight: InFlightMessages | None = None
        self._queue_sampler: otel_metrics.QueueSampler | None = None
        self._failures = FailureCounts()  # shared: a message's failures, whichever pump saw them

    @classmethod
    def from_connection_string(cls, connection_string: str, **settings: Any) -> Worker:
        return cls(StorageAccount.from_connection_string(connection_string), WorkerSettings(**settings))

    def add_orchestrator(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self.registry.add_orchestrator(fn, name)

    def add_activity(self, fn: Callable[..., Any], name: str | None = None) -> str:
        return self.registry.add_activity(fn, name)

    def add_entity(self, fn: Any, name: str | None = None) -> str:
        """Register a durabletask entity (``DurableEntity`` subclass or function); name lower-cased."""
        return self.registry.add_entity(fn, name)

    def _entity_processor(self, hub: TaskHubStorage, poison: PoisonHandler) -> EntityProcessor:
        runtime = self._entity_runtime
        if runtime is None:
            from ..runtimes.entities_durabletask import DurableTaskEntityRuntime

            runtime = DurableTaskEntityRuntime(self.registry)
        entity_settings = EntitySettings(
            max_batch_size=self.settings.max_entity_operation_batch_size,
            reorder_window=self.settings.entity_message_reorder_window,
        )
        return EntityProcessor(hub, runtime, self._cache, poison, entity_settings)

    @property
    def owned_partitions(self) -> list[str]:
        return sorted(self._pumps)

    @property
    def last_partition_check(self) -> float | None:
        """``time.monotonic()`` of the last successful read of the Partitions table (readiness)."""
        return None if self._partitions is None else self._partitions.last_success

    @property
    def partition_loop_failed(self) -> bool:
        return self._partitions is not None and self._partitions.loop_failed

    @property
    def hub(self) -> TaskHubStorage:
        if self._hub is None:
            raise RuntimeError("the worker is not started")
        return self._hub

    def _runtimes(self) -> tuple[OrchestrationRuntime, ActivityRuntime]:
        """The runtimes, wrapped so each execution is told on the ``durable_azstorage.host`` logger."""
        from ..runtimes.execution_log import LoggedActivityRuntime, LoggedOrchestrationRuntime

        orchestrations, activities = self._orchestration_runtime, self._activity_runtime
        if orchestrations is None or activities is None:
            from ..runtimes.durabletask import DurableTaskActivityRuntime, DurableTaskOrchestrationRuntime

            orchestrations = orchestrations or DurableTaskOrchestrationRuntime(self.registry)
            activities = activities or DurableTaskActivityRuntime(self.registry)
        return LoggedOrchestrationRuntime(orchestrations), LoggedActivityRuntime(activities)

    async def start(self) -> None:
        settings = self.settings
        names = TaskHubNames(settings.task_hub_name, settings.partition_count)
        hub = TaskHubStorage(otel_metrics.instrument_account(self.account), names)
        try:
            await _until_storage_answers(lambda: _prepare_hub(self.account, hub, settings.partition_count))
        except BaseException:
            await hub.close()
            raise
        self._hub = hub
        self._in_flight = InFlightMessages(hub, settings.control_queue_visibility_timeout)
        self._in_flight.start()
        orchestration_runtime, activity_runtime = self._runtimes()
        poison = PoisonHandler(hub, settings.poison_dequeue_threshold, self._failures)
        orchestrations = OrchestrationProcessor(hub, orchestration_runtime, self._cache, poison)
        entities = self._entity_processor(hub, poison)
        activities = ActivityProcessor(
            hub,
            activity_runtime,
            poison,
            visibility_timeout=settings.work_item_queue_visibility_timeout,
            max_polling_interval=settings.max_queue_polling_interval,
            local_capacity=settings.max_concurrent_activities if settings.local_dispatch else 0,
        )
        self._activities = activities

        # Every held control message is renewed by self._in_flight (buffered or running, local
        # or remote runtime), so a slow episode keeps its messages without a per-batch keeper.
        process_entities = otel_metrics.timed("entity", entities.process)
        process_orchestrations = otel_metrics.timed("orchestration", orchestrations.process)

        async def run_batch(batch: InstanceBatch[QueueMessage]) -> None:
            completed = False
            parked = Parked()

            async def complete(keep: Parked) -> None:
                # Once the checkpoint is written the instance's next batch may run; this one's
                # messages stay held (renewed, duplicates dropped) until they are deleted, and
                # parked ones (worker/sessions.py) are held for the instance's next batch.
                nonlocal completed
                if not completed:
                    completed = True
                    await self._sessions.complete(batch, keep.messages, keep.wake_after)

            try:
                if is_entity_instance(batch.instance_id):
                    parked = await process_entities(batch.instance_id, batch.messages)
                else:
                    parked = await process_orchestrations(batch.instance_id, batch.messages, complete)
            finally:
                await complete(parked)
                if self._in_flight is not None:  # parked messages stay held, so renewed
                    kept = {id(m) for m in parked.messages}
                    self._in_flight.release([m for m in batch.messages if id(m) not in kept])

        self._dispatchers = [
            Dispatcher(
                "orchestrations",
                self._sessions.next_batch,
                run_batch,
                concurrency=settings.max_concurrent_orchestrations,
            ),
            Dispatcher(
                "activities",
                activities.fetch,
                otel_metrics.timed("activity", activities.process),
                concurrency=settings.max_concurrent_activities,
            ),
        ]
        for dispatcher in self._dispatchers:
            dispatcher.start()
        self._partitions = PartitionManager(
            hub,
            settings,
            on_acquired=self._on_partition_acquired,
            on_released=self._on_partition_released,
            is_idle=lambda queue_name: self._sessions.active_in_queue(queue_name) == 0,
        )
        await self._partitions.start()
        if otel_metrics.is_enabled():
            self._queue_sampler = otel_metrics.QueueSampler(
                hub, self, settings.worker_id, otel_metrics.queue_sample_interval()
            )
            self._queue_sampler.start()
        log.info("worker.started", extra={"worker_id": settings.worker_id, "task_hub": names.task_hub})

    async def _on_partition_acquired(self, queue_name: str) -> None:
        if queue_name in self._pumps:
            return
        hub = self.hub
        # Another worker may have advanced these instances while we did not own them.
        self._cache.evict_where(lambda instance_id: hub.names.control_queue_for(instance_id) == queue_name)
        pump = ControlQueuePump(
            hub,
            queue_name,
            self._sessions,
            PoisonHandler(hub, self.settings.poison_dequeue_threshold, self._failures),
            self._in_flight,
            batch_size=self.settings.control_queue_batch_size,
            visibility_timeout=self.settings.control_queue_visibility_timeout,
            max_polling_interval=self.settings.max_queue_polling_interval,
        )
        self._pumps[queue_name] = pump
        if self.settings.local_dispatch:
            hub.queue(queue_name).set_local_sink(pump)
        pump.start()
        log.info("worker.partition_acquired", extra={"queue": queue_name, "worker_id": self.settings.worker_id})

    async def _on_partition_released(self, queue_name: str) -> None:
        pump = self._pumps.pop(queue_name, None)
        if pump is not None:
            if self._hub is not None:
                self._hub.queue(queue_name).set_local_sink(None)
            await pump.stop()
        log.info("worker.partition_released", extra={"queue": queue_name, "worker_id": self.settings.worker_id})

    async def stop(self) -> None:
        """Graceful stop: hand partitions over first, then finish activities, then close.

        Order: stop dequeuing control messages → let running episodes checkpoint → release the
        partition rows (another host claims them at its next read, ~2 s) → drain activities
        (they are not tied to a partition) → close clients.
        """
        drain = self.settings.drain_timeout.total_seconds()
        if self._queue_sampler is not None:
            await self._queue_sampler.stop()
            self._queue_sampler = None
        if self._activities is not None:
            self._activities.stop_accepting()
        for queue_name, pump in list(self._pumps.items()):
            if self._hub is not None:
                self._hub.queue(queue_name).set_local_sink(None)
            await pump.stop()
        orchestrations = [d for d in self._dispatchers if d.name == "orchestrations"]
        for dispatcher in orchestrations:
            await dispatcher.stop(drain_timeout=drain)
        if self._partitions is not None:
            await self._partitions.stop()
        for dispatcher in self._dispatchers:
            if dispatcher not in orchestrations:
                await dispatcher.stop(drain_timeout=drain)
        self._pumps.clear()
        if self._activities is not None:
            await self._activities.release_local()
            self._activities = None
        if self._in_flight is not None:
            await self._in_flight.stop()
            self._in_flight = None
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
        log.info("worker.stopped", extra={"worker_id": self.settings.worker_id})

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def _check_partition_count(hub: TaskHubStorage, configured: int) -> None:
    """Fail fast when this worker's partition count is not the one the hub was created with.

    Clients route by the hub's stored count (one Partitions row per control queue); a worker
    with another count would consume queues nobody sends to and claim rows it does not use.
    """
    stored = await hub.stored_partition_count()
    if stored is not None and stored != configured:
        raise ConfigurationError(
            f"task hub {hub.names.task_hub!r} has {stored} partitions but this worker was started with "
            f"partition count {configured}: start every worker with --partition-count {stored} "
            "(host.json partitionCount), or delete the task hub to change it"
        )


async def _prepare_hub(account: StorageAccount, hub: TaskHubStorage, partition_count: int) -> None:
    await _check_partition_count(hub, partition_count)
    await TaskHubResources(account, hub.names).create()


_START_PATIENCE_S = 60.0


async def _until_storage_answers(step: Callable[[], Awaitable[None]]) -> None:
    """Run a start-up step, waiting out storage trouble (a host restarted during an outage or
    while the account throttles must come up when storage does, not exit). Anything else —
    a wrong key, a partition-count mismatch — fails at once, and so does storage that stays
    unreachable for a minute (most likely a wrong endpoint: say so rather than wait forever)."""
    delay = 1.0
    give_up = asyncio.get_running_loop().time() + _START_PATIENCE_S
    while True:
        try:
            await step()
            return
        except Exception as exc:
            if not is_storage_trouble(exc) or asyncio.get_running_loop().time() + delay > give_up:
                raise
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            log.warning("worker.storage_unavailable_at_start", extra={"retry_in_s": delay, "error": first_line})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
