"""Issue 14 defect 2: a late duplicate answer of a retried activity's attempt 1 is not attempt 2's.

The durabletask SDK retries under the same task id. Here attempt 1 fails, attempt 2 is held
running, and a second (late, duplicate) ``TaskCompleted`` of attempt 1 — as a re-run of
attempt 1 after a lost lock would send — arrives meanwhile. The orchestration must wait for
attempt 2 and return its result, not the stale one.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from durabletask import task

from durable_azstorage.aio import TaskHubClient
from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.queue_codec import MessageData, encode_message_data
from durable_azstorage.connection import StorageAccount
from durable_azstorage.model import (
    EventType,
    OrchestrationInstance,
    OrchestrationStatus,
    TaskCompletedEvent,
    TaskMessage,
)
from durable_azstorage.runtimes.attempts import scheduling_episodes
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage.queues import next_sequence_number
from durable_azstorage.worker import Worker
from tests.helpers import eventually

CALLS: Counter[str] = Counter()
GATES: dict[str, threading.Event] = {}


def second_time_lucky(ctx: task.ActivityContext, token: str) -> str:
    CALLS[token] += 1
    if CALLS[token] == 1:
        raise RuntimeError("attempt 1 fails")
    GATES[token].wait(60)
    return f"attempt {CALLS[token]}"


def retried(ctx: task.OrchestrationContext, token: str) -> Generator[task.Task[Any], Any, str]:
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)
    return (yield ctx.call_activity(second_time_lucky, input=token, retry_policy=policy))


async def test_late_answer_of_attempt_one_is_not_taken_for_attempt_two(
    storage_account: StorageAccount, storage_connection_string: str, task_hub_name: str
) -> None:
    token = uuid.uuid4().hex
    GATES[token] = threading.Event()
    settings = WorkerSettings(
        task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1), partition_count=1
    )
    worker = Worker(storage_account, settings)
    worker.add_orchestrator(retried)
    worker.add_activity(second_time_lucky)
    try:
        async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
            instance_id = await client.schedule_new_orchestration("retried", input=token)

            async def two_attempts_scheduled() -> list[Any]:
                history = await client.get_orchestration_history(instance_id)
                scheduled = [e for e in history if e.event_type == EventType.TaskScheduled]
                return history if len(scheduled) == 2 and CALLS[token] == 2 else []

            history = await eventually(two_attempts_scheduled, timeout=30, message="attempt 2 running")
            task_id = next(e.event_id for e in history if e.event_type == EventType.TaskScheduled)
            first, second = scheduling_episodes(task_id, history)
            assert first < second
            queue_name = TaskHubNames(task_hub_name, 1).control_queue_for(instance_id)
            stale = MessageData(
                activity_id=uuid.uuid4(),
                task_message=TaskMessage(
                    event=TaskCompletedEvent(task_scheduled_id=task_id, result='"stale answer of attempt 1"'),
                    orchestration_instance=OrchestrationInstance(instance_id=instance_id),
                ),
                sequence_number=next_sequence_number(),
                episode=first,
                sender=OrchestrationInstance(instance_id=instance_id),
            )
            async with storage_account.queue_service() as service:
                queue = service.get_queue_client(queue_name)
                await queue.send_message(encode_message_data(stale))

                async def consumed() -> bool:
                    props = await queue.get_queue_properties()
                    return (props.approximate_message_count or 0) == 0

                await eventually(consumed, timeout=30, message="stale answer processed")
            GATES[token].set()
            state = await client.wait_for_completion(instance_id, timeout=60)
            assert state is not None and state.runtime_status == OrchestrationStatus.Completed
            assert state.output == '"attempt 2"'
    finally:
        GATES[token].set()
