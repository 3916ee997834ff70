"""Runs activities from the shared work-item queue (any worker may take any activity).

Completion order is DTAS's: send the TaskCompleted/TaskFailed response to the instance's
control queue, then delete the work item. A crash in between re-runs the activity and sends
a duplicate response, which the orchestration drops: activities are at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from datetime import timedelta

from ..codec.queue_codec import MessageData
from ..model import FailureDetails, TaskCompletedEvent, TaskFailedEvent, TaskMessage, TaskScheduledEvent
from ..runtimes.base import ActivityResult, ActivityRuntime
from ..storage import TaskHubStorage
from ..storage.queues import BackoffPoller, QueueMessage, next_sequence_number
from ..telemetry import tracing
from .poison import PoisonHandler

__all__ = ["ActivityProcessor"]

log = logging.getLogger(__name__)


class ActivityProcessor:
    """Fetches one work item at a time and executes it with lock renewal."""

    def __init__(
        self,
        hub: TaskHubStorage,
        runtime: ActivityRuntime,
        poison: PoisonHandler,
        *,
        visibility_timeout: timedelta,
        max_polling_interval: timedelta,
        local_capacity: int = 0,
    ) -> None:
        self._hub = hub
        self._runtime = runtime
        self._poison = poison
        self._visibility = visibility_timeout
        self._queue = hub.queue(hub.names.work_item_queue)
        self._poller = BackoffPoller(max_interval=max_polling_interval.total_seconds())
        self._queue.add_listener(self._poller.wake)
        self._local: deque[QueueMessage] = deque()
        self._local_capacity = local_capacity
        self._accepting = local_capacity > 0
        if self._accepting:
            self._queue.set_local_sink(self)

    # ---- LocalSink: work items this worker schedules run here without a receive call, up to
    # ``local_capacity`` waiting; beyond that they go through the shared queue to any worker.
    @property
    def hold(self) -> timedelta:
        return self._visibility

    def accepts(self) -> bool:
        return self._accepting and len(self._local) < self._local_capacity

    def deliver(self, message: QueueMessage) -> bool:
        if not self._accepting:
            return False
        self._local.append(message)
        self._poller.nudge()  # take it now; the shared queue is no fuller than at the last poll
        return True

    def stop_accepting(self) -> None:
        """New work items go through the queue from now on (the worker is stopping)."""
        self._accepting = False
        self._queue.set_local_sink(None)

    async def release_local(self) -> None:
        """Make held work items that never started visible again, so another worker runs them."""
        self.stop_accepting()
        self._queue.remove_listener(self._poller.wake)
        pending = list(self._local)
        self._local.clear()
        await asyncio.gather(*(self._queue.abandon(m, delay=timedelta(0)) for m in pending), return_exceptions=True)

    async def fetch(self) -> QueueMessage | None:
        """Wait (with back-off) for the next work item; None lets the dispatcher re-check stop."""
        if self._local:
            return self._local.popleft()
        if not self._poller.poll_due():
            # Items handed over in memory ended the last wait, not a send to the shared queue:
            # poll it on the back-off's schedule, not once per hand-over.
            await self._poller.wait_until_due()
            return None
        messages = await self._queue.receive(self._receive_size(), self._visibility)
        if not messages:
            if self._local:
                self._poller.back_off()  # handed over during the poll: take those, no wait
            else:
                await self._poller.wait()
            return None
        self._poller.reset()
        # Prefetched work items wait with the handed-over ones (same bound, same release on stop).
        self._local.extend(messages[1:])
        return messages[0]

    def _receive_size(self) -> int:
        """One work item, or as many as the local backlog has room for (one Get Messages, not n).

        A backlog in the shared queue is fetched in one call per up to ``local_capacity`` items
        instead of one call per item; the rest wait, invisible to other workers for the
        visibility timeout, exactly like items handed over in memory.
        """
        if not self._accepting:
            return 1
        return max(1, min(32, self._local_capacity - len(self._local)))

    async def process(self, message: QueueMessage) -> None:
        if message.data is None or message.error is not None:
            await self._poison.quarantine(message, f"undecodable work item: {message.error}")
            return
        tm = message.data.task_message
        if tm is None or not isinstance(tm.event, TaskScheduledEvent):
            await self._poison.quarantine(message, "work item is not a TaskScheduled message")
            return
        if await self._poison.quarantine_if_exhausted(message, "activity work item keeps failing"):
            return
        renewal = asyncio.create_task(self._renew_until_done(message))
        try:
            result = await self._run(tm)
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        try:
            await self._respond(message, tm, result)
            await self._queue.delete(message)
        except Exception:
            # Storage trouble, not user code: put the work item back with back-off so it is
            # retried (the activity may run again: activities are at-least-once).
            log.warning("activity.completion_failed", extra={"message_id": message.message_id}, exc_info=True)
            await self._poison.abandon_all([message], "activity completion keeps failing")

    async def _run(self, tm: TaskMessage) -> ActivityResult:
        event = tm.event
        assert isinstance(event, TaskScheduledEvent)
        if getattr(self._runtime, "emits_spans", False) or not tracing.is_enabled():
            if event.parent_trace_context is None or not tracing.is_enabled():
                return await self._execute(tm, event)
            token = tracing.current_task_context.set(event.parent_trace_context)  # for a remote runtime
            try:
                return await self._execute(tm, event)
            finally:
                tracing.current_task_context.reset(token)
        with tracing.activity_span(event, tm.orchestration_instance.instance_id) as span:
            result = await self._execute(tm, event)
            tracing.record_activity_outcome(span, result.failure_details)
            return result

    async def _execute(self, tm: TaskMessage, event: TaskScheduledEvent) -> ActivityResult:
        try:
            return await self._runtime.run_activity(
                event.name or "",
                event.input,
                instance_id=tm.orchestration_instance.instance_id,
                task_id=event.event_id,
            )
        except Exception as exc:  # the runtime should not raise, but never lose the task
            log.exception("activity.runtime_error", extra={"activity": event.name})
            return ActivityResult(failure_details=FailureDetails(error_type=type(exc).__name__, error_message=str(exc)))

    async def _respond(self, message: QueueMessage, tm: TaskMessage, result: ActivityResult) -> None:
        event = tm.event
        if result.failure_details is not None:
            fd = result.failure_details
            response: TaskCompletedEvent | TaskFailedEvent = TaskFailedEvent(
                task_scheduled_id=event.event_id,
                reason=fd.error_message,
                details=fd.stack_trace,
                failure_details=fd,
            )
        else:
            response = TaskCompletedEvent(task_scheduled_id=event.event_id, result=result.result)
        instance = tm.orchestration_instance
        md = MessageData(
            activity_id=uuid.uuid4(),
            task_message=TaskMessage(event=response, orchestration_instance=instance),
            sequence_number=next_sequence_number(),
            episode=message.data.episode if message.data and message.data.episode is not None else -1,
            sender=instance,
        )
        await self._hub.queue(self._hub.names.control_queue_for(instance.instance_id)).send(md)

    async def _renew_until_done(self, message: QueueMessage) -> None:
        """Keep a long activity invisible to other workers (Core renews 30 s before expiry)."""
        period = max(self._visibility.total_seconds() - 30, self._visibility.total_seconds() / 2, 1.0)
        while True:
            await asyncio.sleep(period)
            try:
                await self._queue.renew(message, self._visibility)
            except Exception:
                log.warning("activity.renew_failed", extra={"message_id": message.message_id}, exc_info=True)
                return
