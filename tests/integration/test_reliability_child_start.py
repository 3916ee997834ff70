"""A sub-orchestration started twice by its parent runs once.

A parent that crashes after sending its child's ``ExecutionStarted`` but before its own
checkpoint runs the episode again and sends a second start, with a new child execution id but
the same parent reference. Here that second start is sent by hand, once after the child finished
(the case a SIGKILL test caught as a second child trace) and once while the child is running.
Either way the child keeps its one execution and its activity does not run again.
"""

from __future__ import annotations

import dataclasses
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
    ExecutionStartedEvent,
    OrchestrationInstance,
    OrchestrationStatus,
    SubOrchestrationInstanceCreatedEvent,
    TaskMessage,
)
from durable_azstorage.settings import WorkerSettings
from durable_azstorage.storage.queues import next_sequence_number
from durable_azstorage.worker import Worker
from tests.helpers import eventually

CALLS: Counter[str] = Counter()
GATES: dict[str, threading.Event] = {}


def count_call(ctx: task.ActivityContext, token: str) -> str:
    CALLS[token] += 1
    GATES[token].wait(60)
    return f"call {CALLS[token]}"


def child(ctx: task.OrchestrationContext, token: str) -> Generator[task.Task[Any], Any, str]:
    return (yield ctx.call_activity(count_call, input=token))


def parent(ctx: task.OrchestrationContext, token: str) -> Generator[task.Task[Any], Any, str]:
    return (yield ctx.call_sub_orchestrator(child, input=token))


async def _resend_start(client: TaskHubClient, account: StorageAccount, hub: str, child_id: str) -> None:
    history = await client.get_orchestration_history(child_id)
    started = next(e for e in history if isinstance(e, ExecutionStartedEvent))
    again = dataclasses.replace(
        started, orchestration_instance=OrchestrationInstance(instance_id=child_id, execution_id=uuid.uuid4().hex)
    )
    data = MessageData(
        activity_id=uuid.uuid4(),
        task_message=TaskMessage(event=again, orchestration_instance=again.orchestration_instance),
        sequence_number=next_sequence_number(),
    )
    async with account.queue_service() as service:
        queue = service.get_queue_client(TaskHubNames(hub, 1).control_queue_for(child_id))
        await queue.send_message(encode_message_data(data))

        async def consumed() -> bool:
            props = await queue.get_queue_properties()
            return (props.approximate_message_count or 0) == 0

        await eventually(consumed, timeout=30, message="second start taken off the queue")


async def _child_of(client: TaskHubClient, parent_id: str) -> str:
    async def created() -> str | None:
        history = await client.get_orchestration_history(parent_id)
        event = next((e for e in history if isinstance(e, SubOrchestrationInstanceCreatedEvent)), None)
        return event.instance_id if event is not None else None

    child_id = await eventually(created, timeout=30, message="child scheduled")
    assert child_id
    return child_id


async def test_a_second_start_of_a_sub_orchestration_is_dropped(
    storage_account: StorageAccount, task_hub_name: str
) -> None:
    token = uuid.uuid4().hex
    GATES[token] = threading.Event()
    settings = WorkerSettings(
        task_hub_name=task_hub_name, max_queue_polling_interval=timedelta(seconds=1), partition_count=1
    )
    worker = Worker(storage_account, settings)
    worker.add_orchestrator(parent)
    worker.add_orchestrator(child)
    worker.add_activity(count_call)
    try:
        async with worker, await TaskHubClient.open(storage_account, task_hub_name) as client:
            parent_id = await client.schedule_new_orchestration("parent", input=token)
            child_id = await _child_of(client, parent_id)
            await eventually(lambda: CALLS[token] == 1, timeout=30, message="child's activity running")
            running = await client.get_orchestration_state(child_id)
            assert running is not None
            await _resend_start(client, storage_account, task_hub_name, child_id)  # while it runs
            GATES[token].set()
            state = await client.wait_for_completion(parent_id, timeout=60)
            assert state is not None and state.runtime_status == OrchestrationStatus.Completed
            assert state.output == '"call 1"'

            await _resend_start(client, storage_account, task_hub_name, child_id)  # after it finished
            after = await client.get_orchestration_state(child_id)
            assert after is not None and after.runtime_status == OrchestrationStatus.Completed
            assert after.execution_id == running.execution_id
            assert CALLS[token] == 1
            parent_after = await client.get_orchestration_state(parent_id)
            assert parent_after is not None and parent_after.output == '"call 1"'
    finally:
        GATES[token].set()
